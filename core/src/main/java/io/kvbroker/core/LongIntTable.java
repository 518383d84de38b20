package io.kvbroker.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * An open-addressing map from long keys to int values other than -1 (which means absent), with linear probing: two
 * parallel arrays, no object per entry. One writer; readers on other threads never block it.
 *
 * <p>Design note: a concurrent reader must never miss or misread an entry the writer is not changing. So entries
 * never move while the arrays are published: a removal leaves a tombstone (lookups probe past it), a value is
 * written before its slot shows as occupied (release; readers acquire), and a resize, or a rebuild that sweeps out
 * tombstones, fills fresh arrays and publishes them as one object. A reader holding the old arrays sees the table as
 * it was; the index's readers detect that through the writes they overlapped, never through this class.
 */
public final class LongIntTable {
    private static final int EMPTY = -1;
    /** A removed entry: lookups probe on past it; inserts may reuse it. */
    private static final int TOMBSTONE = Integer.MIN_VALUE;
    private static final VarHandle VALUES = MethodHandles.arrayElementVarHandle(int[].class);

    /** The arrays, published together. */
    private static final class Tab {
        final long[] keys;
        final int[] values;

        Tab(int capacity) {
            keys = new long[capacity];
            values = new int[capacity];
            Arrays.fill(values, EMPTY);
        }
    }

    private volatile Tab tab = new Tab(16);
    private int size;
    private int tombstones;

    /** Receives one entry of the table. */
    @FunctionalInterface
    public interface EntryVisitor {
        void entry(long key, int value);
    }

    public int size() {
        return size;
    }

    /** Visits every live entry; on the writer's thread, which alone changes the table. */
    public void forEach(EntryVisitor visitor) {
        Tab t = tab;
        for (int i = 0; i < t.keys.length; i++) {
            int value = t.values[i];
            if (value != EMPTY && value != TOMBSTONE) {
                visitor.entry(t.keys[i], value);
            }
        }
    }

    public long memoryBytes() {
        return 48L + 12L * tab.keys.length;
    }

    public int get(long key) {
        Tab t = tab;
        long[] keys = t.keys;
        int[] values = t.values;
        int mask = keys.length - 1;
        for (int i = slot(key, mask); ; i = (i + 1) & mask) {
            int value = (int) VALUES.getAcquire(values, i);
            if (value == EMPTY) {
                return EMPTY;
            }
            if (value != TOMBSTONE && keys[i] == key) {
                return value;
            }
        }
    }

    public void put(long key, int value) {
        // Live entries and tombstones together at most 4/5 of the slots: probes stay short and always end.
        if ((size + tombstones + 1) * 5L > tab.keys.length * 4L) {
            // Doubling when live entries pass 2/5, else a same-size sweep of the tombstones.
            rebuild((size + 1) * 5L > tab.keys.length * 2L ? tab.keys.length * 2 : tab.keys.length);
        }
        Tab t = tab;
        int mask = t.keys.length - 1;
        int reuse = -1;
        for (int i = slot(key, mask); ; i = (i + 1) & mask) {
            int current = t.values[i];
            if (current == EMPTY) {
                int at = reuse >= 0 ? reuse : i;
                if (reuse >= 0) {
                    tombstones--;
                }
                // Key first, then the value with release: a reader that sees the slot occupied sees its key.
                t.keys[at] = key;
                VALUES.setRelease(t.values, at, value);
                size++;
                return;
            }
            if (current == TOMBSTONE) {
                if (reuse < 0) {
                    reuse = i;
                }
            } else if (t.keys[i] == key) {
                VALUES.setRelease(t.values, i, value);
                return;
            }
        }
    }

    public void remove(long key) {
        Tab t = tab;
        int mask = t.keys.length - 1;
        for (int i = slot(key, mask); ; i = (i + 1) & mask) {
            int current = t.values[i];
            if (current == EMPTY) {
                return;
            }
            if (current != TOMBSTONE && t.keys[i] == key) {
                VALUES.setRelease(t.values, i, TOMBSTONE);
                size--;
                tombstones++;
                return;
            }
        }
    }

    /** Copies the live entries into fresh arrays of {@code capacity} slots and publishes them. */
    private void rebuild(int capacity) {
        Tab old = tab;
        Tab fresh = new Tab(capacity);
        int mask = capacity - 1;
        for (int j = 0; j < old.keys.length; j++) {
            int value = old.values[j];
            if (value != EMPTY && value != TOMBSTONE) {
                int i = slot(old.keys[j], mask);
                while (fresh.values[i] != EMPTY) {
                    i = (i + 1) & mask;
                }
                fresh.keys[i] = old.keys[j];
                fresh.values[i] = value;
            }
        }
        tombstones = 0;
        tab = fresh;
    }

    private static int slot(long key, int mask) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32)) & mask;
    }
}
