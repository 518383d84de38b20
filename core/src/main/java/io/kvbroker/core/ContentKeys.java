package io.kvbroker.core;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Computes kvbroker's content keys: a chain of 64-bit keys over a prompt's tokens, one per chunk of g tokens, in one
 * keyspace per model and adapter. Gateways compute the keys of a prompt; the broker computes the keys of the blocks
 * engines announce; the two meet in the index without anyone reproducing an engine's own hash.
 *
 * <p>Design note: the algorithm (docs/content-keys.md, version {@value #VERSION}) is small enough to reimplement in
 * any language, and {@code scripts/gen-key-vectors.mjs} is a second implementation whose outputs the tests check.
 * Not thread-safe: an instance reuses one scratch buffer; make one per thread.
 */
public final class ContentKeys {
    /** Written into every root, so a future change of algorithm can never collide with this one. */
    public static final String VERSION = "kvbroker.key.v1";
    /** vLLM's hash block size: the default granularity. */
    public static final int DEFAULT_GRANULARITY = 16;

    private final int granularity;
    private byte[] scratch = new byte[256];
    private int length;

    public ContentKeys(int granularity) {
        if (granularity < 1 || granularity > 4096) {
            throw new IllegalArgumentException("granularity must be 1..4096, was " + granularity);
        }
        this.granularity = granularity;
    }

    public int granularity() {
        return granularity;
    }

    /** The key before a chain's first chunk: model and adapter name, nothing engine-local. */
    public long root(String model, String loraName) {
        length = 0;
        putBytes(VERSION.getBytes(StandardCharsets.UTF_8));
        putByte(0);
        putBytes(model.getBytes(StandardCharsets.UTF_8));
        putByte(0);
        putBytes((loraName == null ? "" : loraName).getBytes(StandardCharsets.UTF_8));
        return Xxh64.hash(scratch, 0, length, 0);
    }

    /**
     * The key of {@code granularity} tokens from {@code from}, chained on {@code parent}.
     *
     * @param extra the block's normalized extra keys ({@link #normalizeExtra}), or null
     */
    public long chunk(long parent, int[] tokens, int from, List<?> extra) {
        if (extra == null && (granularity & 1) == 0) {
            // The common case: whole 8-byte lanes, hashed without serializing (same bytes, same hash).
            return Xxh64.hashChunk(parent, tokens, from, granularity);
        }
        length = 0;
        putLong(parent);
        for (int i = from; i < from + granularity; i++) {
            putInt(tokens[i]);
        }
        if (extra != null) {
            encode(extra);
        }
        return Xxh64.hash(scratch, 0, length, 0);
    }

    /** The keys of a prompt's full chunks, in order ({@code tokens.length / granularity} of them). */
    public long[] promptKeys(String model, String loraName, int[] tokens) {
        long[] keys = new long[tokens.length / granularity];
        long parent = root(model, loraName);
        for (int c = 0; c < keys.length; c++) {
            parent = chunk(parent, tokens, c * granularity, null);
            keys[c] = parent;
        }
        return keys;
    }

    /**
     * The key of an engine block of {@code span} chunks starting at {@code from} (its last chunk's key, under which
     * the index records it), chained on the key before it. The block's extra keys enter its first chunk only.
     */
    public long block(long parent, int[] tokens, int from, int span, List<?> extra) {
        long key = parent;
        for (int c = 0; c < span; c++) {
            key = chunk(key, tokens, from + c * granularity, c == 0 ? extra : null);
        }
        return key;
    }

    /**
     * One block's extra keys as they enter its key: none when the engine sent nil, or a list holding nothing but the
     * adapter's name (which the root already carries); otherwise the list without that name. So nil, absent and
     * all-nil extra keys agree, whichever vLLM release sent them.
     */
    public static List<Object> normalizeExtra(Object blockExtra, String loraName) {
        if (!(blockExtra instanceof List<?> list)) {
            return null;
        }
        List<Object> kept = new ArrayList<>(list.size());
        for (Object item : list) {
            if (item != null && !(loraName != null && loraName.equals(item))) {
                kept.add(item);
            }
        }
        return kept.isEmpty() ? null : Collections.unmodifiableList(kept);
    }

    /** Self-delimiting encoding of an extra-key value (docs/content-keys.md lists the tags). */
    private void encode(Object value) {
        if (value == null) {
            putByte(0x00);
        } else if (value instanceof Boolean flag) {
            putByte(flag ? 0x03 : 0x02);
        } else if (value instanceof Long || value instanceof Integer || value instanceof Short
                || value instanceof Byte) {
            putByte(0x04);
            putLong(((Number) value).longValue());
        } else if (value instanceof Double || value instanceof Float) {
            putByte(0x05);
            putLong(Double.doubleToLongBits(((Number) value).doubleValue()));
        } else if (value instanceof String text) {
            byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
            putByte(0x06);
            putInt(bytes.length);
            putBytes(bytes);
        } else if (value instanceof byte[] bytes) {
            putByte(0x07);
            putInt(bytes.length);
            putBytes(bytes);
        } else if (value instanceof List<?> list) {
            putByte(0x08);
            putInt(list.size());
            for (Object item : list) {
                encode(item);
            }
        } else {
            throw new IllegalArgumentException("extra key of type " + value.getClass().getName());
        }
    }

    private void ensure(int more) {
        if (length + more > scratch.length) {
            scratch = Arrays.copyOf(scratch, Math.max(scratch.length * 2, length + more));
        }
    }

    private void putByte(int b) {
        ensure(1);
        scratch[length++] = (byte) b;
    }

    private void putBytes(byte[] bytes) {
        ensure(bytes.length);
        System.arraycopy(bytes, 0, scratch, length, bytes.length);
        length += bytes.length;
    }

    private void putInt(int v) {
        ensure(4);
        scratch[length] = (byte) v;
        scratch[length + 1] = (byte) (v >>> 8);
        scratch[length + 2] = (byte) (v >>> 16);
        scratch[length + 3] = (byte) (v >>> 24);
        length += 4;
    }

    private void putLong(long v) {
        ensure(8);
        for (int i = 0; i < 8; i++) {
            scratch[length + i] = (byte) (v >>> (8 * i));
        }
        length += 8;
    }
}
