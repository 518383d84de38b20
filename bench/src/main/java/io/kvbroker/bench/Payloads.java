package io.kvbroker.bench;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;

/** The payload sets the decoder benchmarks run over: the captured vLLM vectors, and a realistic map-form mix. */
final class Payloads {
    static final List<String> GOLDEN = List.of("00_warmup_all_blocks_cleared", "01_map_block_stored_root",
            "02_map_block_stored_child_lora_salt", "03_map_block_removed", "04_map_all_blocks_cleared",
            "05_map_bytes_hashes", "06_array_block_stored", "07_array_block_removed", "08_array_all_blocks_cleared",
            "09_array_block_stored_v090_shape");

    private Payloads() {
    }

    /** The ten captured payloads, read from the broker's test resources (bench's pom adds them to its jar). */
    static List<byte[]> golden() {
        List<byte[]> payloads = new ArrayList<>();
        for (String name : GOLDEN) {
            try (InputStream in = Payloads.class.getResourceAsStream("/vllm-vectors/" + name + ".payload.hex")) {
                if (in == null) {
                    throw new IllegalStateException("vector " + name + " is not on the classpath");
                }
                payloads.add(HexFormat.of().parseHex(new String(in.readAllBytes(), StandardCharsets.UTF_8).strip()));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return payloads;
    }

    /**
     * A busy engine's steps in map form (vLLM 0.26+), averaging about 1 KB: each step stores one to three runs of 1 to
     * 4 blocks of 16 tokens (vocabulary ids up to 152k, so most tokens take 3 or 5 bytes) continuing a chain, and
     * evicts 1 to 6 blocks one hash at a time.
     */
    static List<byte[]> realisticMix(int batches, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        KvEventEncoder encoder = new KvEventEncoder();
        List<byte[]> payloads = new ArrayList<>(batches);
        long parent = random.nextLong();
        for (int b = 0; b < batches; b++) {
            List<KvEvent> events = new ArrayList<>();
            int runs = 1 + random.nextInt(3);
            for (int r = 0; r < runs; r++) {
                int blocks = 1 + random.nextInt(4);
                long[] hashes = new long[blocks];
                int[] tokens = new int[blocks * 16];
                for (int i = 0; i < blocks; i++) {
                    hashes[i] = random.nextLong();
                }
                for (int t = 0; t < tokens.length; t++) {
                    tokens[t] = random.nextInt(152_000);
                }
                events.add(new BlockStored(hashes, true, parent, tokens, 16, KvEvent.ABSENT, Medium.GPU, null,
                        null, 0, GroupKind.FULL_ATTENTION, KvEvent.ABSENT, null, null, null));
                parent = hashes[blocks - 1];
            }
            long[] evicted = new long[1 + random.nextInt(6)];
            for (int i = 0; i < evicted.length; i++) {
                evicted[i] = random.nextLong();
            }
            events.add(new BlockRemoved(evicted, Medium.GPU, 0, GroupKind.UNKNOWN, null, null));
            payloads.add(encoder.encode(new KvEventBatch(1.7575e9 + b * 0.01, 0, events, 0, 0),
                    KvEventEncoder.Form.MAP));
        }
        return payloads;
    }
}
