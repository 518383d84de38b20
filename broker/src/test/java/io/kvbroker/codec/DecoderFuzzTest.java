package io.kvbroker.codec;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.event.BlockStored;
import io.kvbroker.event.KvEventBatch;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Seeded random and mutation campaigns: whatever the bytes, the decoder returns a batch or a typed error, and a bad
 * message leaves nothing behind that changes how the next good one decodes. Bounded by count, not by time.
 */
class DecoderFuzzTest {
    private static final long SEED = 0x6b76627262L;
    private static final int[] INTERESTING = {0x00, 0x7f, 0x80, 0x90, 0x9f, 0xc0, 0xc1, 0xc4, 0xc6, 0xca, 0xcb, 0xcc,
        0xcf, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};

    private final KvEventDecoder decoder = new KvEventDecoder();

    /** Decodes, allowing only a typed error; returns the batch or null. */
    private KvEventBatch tryDecode(byte[] input) {
        try {
            return decoder.decode(input);
        } catch (MalformedMessageException e) {
            // UNDECODABLE is the decoder's net for its own bugs (an unchecked bound): never expected here.
            assertThat(e.reason()).as(HexFormat.of().formatHex(input)).isNotEqualTo(
                    MalformedMessageException.Reason.UNDECODABLE);
            return null;
        } catch (Throwable t) {
            throw new AssertionError("untyped failure on " + HexFormat.of().formatHex(input), t);
        }
    }

    @Test
    void randomBytesNeverEscapeAsAnythingButATypedError() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int i = 0; i < 50_000; i++) {
            byte[] input = new byte[random.nextInt(300)];
            for (int j = 0; j < input.length; j++) {
                input[j] = (byte) random.nextInt(256);
            }
            // Most random inputs fail at the first byte; starting them like a batch reaches deeper code.
            if (input.length > 10 && random.nextBoolean()) {
                input[0] = (byte) 0x93;
                input[1] = (byte) 0xcb;
                input[10] = (byte) (0x90 + random.nextInt(4));
            }
            tryDecode(input);
        }
    }

    @Test
    void mutatedGoldenPayloadsDecodeOrFailCleanlyAndDoNotPoisonTheNext() {
        SplittableRandom random = new SplittableRandom(SEED + 1);
        List<byte[]> goldens = Vectors.NAMES.stream().map(Vectors::payload).toList();
        byte[] root = Vectors.payload("01_map_block_stored_root");
        int decodedAnyway = 0;
        for (int i = 0; i < 100_000; i++) {
            byte[] input = goldens.get(random.nextInt(goldens.size()));
            int mutations = 1 + random.nextInt(4);
            for (int m = 0; m < mutations; m++) {
                input = mutate(input, random);
            }
            if (tryDecode(input) != null) {
                decodedAnyway++;
            }
            if (i % 1000 == 0) {
                BlockStored stored = (BlockStored) tryDecode(root).events().get(0);
                assertThat(stored.blockHashes()).containsExactly(0xDEADBEEF12345678L, -1L);
                assertThat(stored.tokenIds()).hasSize(32);
            }
        }
        // Sanity that the campaign reaches past the first bytes: some mutants (a changed token) stay valid.
        assertThat(decodedAnyway).isGreaterThan(1000);
    }

    private static byte[] mutate(byte[] input, SplittableRandom random) {
        if (input.length == 0) {
            return new byte[] {(byte) random.nextInt(256)};
        }
        int at = random.nextInt(input.length);
        switch (random.nextInt(6)) {
            case 0 -> {
                byte[] out = input.clone();
                out[at] ^= (byte) (1 << random.nextInt(8));
                return out;
            }
            case 1 -> {
                byte[] out = input.clone();
                out[at] = (byte) INTERESTING[random.nextInt(INTERESTING.length)];
                return out;
            }
            case 2 -> {
                byte[] out = new byte[input.length + 1];
                System.arraycopy(input, 0, out, 0, at);
                out[at] = (byte) random.nextInt(256);
                System.arraycopy(input, at, out, at + 1, input.length - at);
                return out;
            }
            case 3 -> {
                byte[] out = new byte[input.length - 1];
                System.arraycopy(input, 0, out, 0, at);
                System.arraycopy(input, at + 1, out, at, input.length - at - 1);
                return out;
            }
            case 4 -> {
                int length = Math.min(input.length - at, 1 + random.nextInt(16));
                byte[] out = Arrays.copyOf(input, input.length + length);
                System.arraycopy(input, at, out, at + length, input.length - at);
                return out;
            }
            default -> {
                return Arrays.copyOf(input, at);
            }
        }
    }
}
