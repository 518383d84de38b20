package io.kvbroker.core;

/**
 * XXH64 (xxHash, 64-bit), the hash under kvbroker's content keys: fast, and available in every language gateways are
 * written in (Go {@code cespare/xxhash}, Python {@code xxhash}, Rust {@code xxhash-rust}, JS {@code xxhash-wasm}).
 *
 * <p>Design note: a straight transcription of the reference algorithm over a byte range, little-endian, checked
 * against the reference implementation's outputs in the tests. Stateless and allocation-free.
 */
public final class Xxh64 {
    private static final long P1 = 0x9E3779B185EBCA87L;
    private static final long P2 = 0xC2B2AE3D27D4EB4FL;
    private static final long P3 = 0x165667B19E3779F9L;
    private static final long P4 = 0x85EBCA77C2B2AE63L;
    private static final long P5 = 0x27D4EB2F165667C5L;

    private Xxh64() {
    }

    public static long hash(byte[] input) {
        return hash(input, 0, input.length, 0);
    }

    public static long hash(byte[] input, int offset, int length, long seed) {
        int p = offset;
        int end = offset + length;
        long h;
        if (length >= 32) {
            long v1 = seed + P1 + P2;
            long v2 = seed + P2;
            long v3 = seed;
            long v4 = seed - P1;
            int limit = end - 32;
            do {
                v1 = round(v1, readLong(input, p));
                v2 = round(v2, readLong(input, p + 8));
                v3 = round(v3, readLong(input, p + 16));
                v4 = round(v4, readLong(input, p + 24));
                p += 32;
            } while (p <= limit);
            h = converge(v1, v2, v3, v4);
        } else {
            h = seed + P5;
        }
        h += length;
        while (p + 8 <= end) {
            h ^= round(0, readLong(input, p));
            h = Long.rotateLeft(h, 27) * P1 + P4;
            p += 8;
        }
        if (p + 4 <= end) {
            h ^= (readInt(input, p) & 0xFFFFFFFFL) * P1;
            h = Long.rotateLeft(h, 23) * P2 + P3;
            p += 4;
        }
        while (p < end) {
            h ^= (input[p] & 0xFFL) * P5;
            h = Long.rotateLeft(h, 11) * P1;
            p++;
        }
        return avalanche(h);
    }

    /**
     * XXH64 of a chunk's bytes without writing them out: {@code le64(parent)} followed by {@code count} tokens as
     * {@code le32}, for an even {@code count}. Two consecutive little-endian ints are one little-endian long, so the
     * input is whole 8-byte lanes and equals {@link #hash(byte[], int, int, long)} over the serialized bytes.
     */
    public static long hashChunk(long parent, int[] tokens, int from, int count) {
        int lanes = 1 + count / 2;
        long length = 8L * lanes;
        long h;
        int lane = 0;
        if (length >= 32) {
            long v1 = P1 + P2;
            long v2 = P2;
            long v3 = 0;
            long v4 = -P1;
            while (lanes - lane >= 4) {
                v1 = round(v1, lane(parent, tokens, from, lane));
                v2 = round(v2, lane(parent, tokens, from, lane + 1));
                v3 = round(v3, lane(parent, tokens, from, lane + 2));
                v4 = round(v4, lane(parent, tokens, from, lane + 3));
                lane += 4;
            }
            h = converge(v1, v2, v3, v4);
        } else {
            h = P5;
        }
        h += length;
        for (; lane < lanes; lane++) {
            h ^= round(0, lane(parent, tokens, from, lane));
            h = Long.rotateLeft(h, 27) * P1 + P4;
        }
        return avalanche(h);
    }

    /** Lane i of a chunk: the parent key, then tokens two by two. */
    private static long lane(long parent, int[] tokens, int from, int i) {
        if (i == 0) {
            return parent;
        }
        int t = from + 2 * (i - 1);
        return (tokens[t] & 0xFFFFFFFFL) | (long) tokens[t + 1] << 32;
    }

    /** Folds the four stripe accumulators into one. */
    private static long converge(long v1, long v2, long v3, long v4) {
        long h = Long.rotateLeft(v1, 1) + Long.rotateLeft(v2, 7) + Long.rotateLeft(v3, 12) + Long.rotateLeft(v4, 18);
        h = merge(h, v1);
        h = merge(h, v2);
        h = merge(h, v3);
        return merge(h, v4);
    }

    private static long avalanche(long h) {
        h ^= h >>> 33;
        h *= P2;
        h ^= h >>> 29;
        h *= P3;
        return h ^ (h >>> 32);
    }

    private static long round(long acc, long input) {
        acc += input * P2;
        acc = Long.rotateLeft(acc, 31);
        return acc * P1;
    }

    private static long merge(long acc, long value) {
        acc ^= round(0, value);
        return acc * P1 + P4;
    }

    private static long readLong(byte[] b, int p) {
        return (b[p] & 0xFFL) | (b[p + 1] & 0xFFL) << 8 | (b[p + 2] & 0xFFL) << 16 | (b[p + 3] & 0xFFL) << 24
                | (b[p + 4] & 0xFFL) << 32 | (b[p + 5] & 0xFFL) << 40 | (b[p + 6] & 0xFFL) << 48
                | (b[p + 7] & 0xFFL) << 56;
    }

    private static int readInt(byte[] b, int p) {
        return (b[p] & 0xFF) | (b[p + 1] & 0xFF) << 8 | (b[p + 2] & 0xFF) << 16 | (b[p + 3] & 0xFF) << 24;
    }
}
