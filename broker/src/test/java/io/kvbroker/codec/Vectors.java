package io.kvbroker.codec;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;

/** Loads the captured vLLM vectors copied into test resources from ../shared/vllm-vectors. */
final class Vectors {
    static final String TOPIC = "kv@10.0.0.7@Qwen/Qwen3-0.6B";
    static final double TS = 1757500000.25;
    static final List<String> NAMES = List.of(
            "00_warmup_all_blocks_cleared",
            "01_map_block_stored_root",
            "02_map_block_stored_child_lora_salt",
            "03_map_block_removed",
            "04_map_all_blocks_cleared",
            "05_map_bytes_hashes",
            "06_array_block_stored",
            "07_array_block_removed",
            "08_array_all_blocks_cleared",
            "09_array_block_stored_v090_shape");

    private Vectors() {
    }

    static String text(String resource) {
        try (InputStream in = Vectors.class.getResourceAsStream("/vllm-vectors/" + resource)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource vllm-vectors/" + resource);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] payload(String name) {
        return HexFormat.of().parseHex(text(name + ".payload.hex").strip());
    }

    /** The three frames as captured: topic, seq, payload. */
    static byte[][] frames(String name) {
        byte[][] frames = new byte[3][];
        String[] order = {"topic", "seq", "payload"};
        for (String line : text(name + ".frames.hex").strip().split("\n")) {
            String[] parts = line.strip().split(" ", 2);
            int index = List.of(order).indexOf(parts[0]);
            frames[index] = HexFormat.of().parseHex(parts.length > 1 ? parts[1].strip() : "");
        }
        return frames;
    }
}
