package io.kvbroker.index;

import java.util.Arrays;

/**
 * What one write changed in the holder table, the structure Score reads: for each content key whose holding by the
 * engine changed, the span and media after the write (media 0: the engine no longer holds the key), in order, after
 * an optional drop of everything the engine held.
 *
 * <p>Design note: this, not the engine's blocks and chains, is what Watch streams. A copy of the holder table fed
 * these changes answers Score exactly as the broker does without knowing vLLM's hashes or chains, and each entry is
 * an absolute value, so applying a change twice does no harm. The writer fills one per batch when asked to resolve;
 * it is not thread-safe and is never changed once the batch is applied.
 */
public final class HoldingChanges {
    /** No change (a batch that was not resolved, or touched nothing Score reads). */
    public static final HoldingChanges NONE = new HoldingChanges();

    private long[] keys;
    private int[] values;
    private int size;
    private boolean cleared;

    public HoldingChanges() {
        keys = new long[0];
        values = new int[0];
    }

    /** Changes as decoded from a log record: {@code values} packed as {@link #value}. */
    public HoldingChanges(boolean cleared, long[] keys, int[] values) {
        if (keys.length != values.length) {
            throw new IllegalArgumentException(keys.length + " keys but " + values.length + " values");
        }
        this.cleared = cleared;
        this.keys = keys;
        this.values = values;
        this.size = keys.length;
    }

    /** Packs a span and media in one int: span above the 4 media bits. */
    public static int value(int span, int media) {
        return span << 4 | media;
    }

    void set(long key, int span, int media) {
        if (size == keys.length) {
            int capacity = Math.max(8, size * 2);
            keys = Arrays.copyOf(keys, capacity);
            values = Arrays.copyOf(values, capacity);
        }
        keys[size] = key;
        values[size++] = value(span, media);
    }

    /** Everything the engine held is gone: what was noted before no longer matters. */
    void drop() {
        size = 0;
        cleared = true;
    }

    /** Whether the engine's holdings were all dropped before the changes. */
    public boolean cleared() {
        return cleared;
    }

    public int size() {
        return size;
    }

    public long key(int i) {
        return keys[i];
    }

    /** The packed span and media of change {@code i}. */
    public int value(int i) {
        return values[i];
    }

    public int span(int i) {
        return values[i] >>> 4;
    }

    public int media(int i) {
        return values[i] & 0xF;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof HoldingChanges o && cleared == o.cleared
                && Arrays.equals(keys, 0, size, o.keys, 0, o.size)
                && Arrays.equals(values, 0, size, o.values, 0, o.size);
    }

    @Override
    public int hashCode() {
        return 31 * Boolean.hashCode(cleared) + Arrays.hashCode(Arrays.copyOf(keys, size));
    }

    @Override
    public String toString() {
        return "HoldingChanges[cleared=" + cleared + ", size=" + size + "]";
    }
}
