package io.kvbroker.client;

import java.util.Arrays;

/**
 * An open-addressing map from long keys to int values other than -1 (which means absent), with linear probing and
 * backward-shift deletion: two parallel arrays, no object per entry.
 */
final class LongIntTable {
    private static final int EMPTY = -1;
    private long[] keys = new long[16];
    private int[] values = new int[16];
    private int size;

    LongIntTable() {
        Arrays.fill(values, EMPTY);
    }

    int size() {
        return size;
    }

    long memoryBytes() {
        return 32L + 12L * keys.length;
    }

    int get(long key) {
        int mask = keys.length - 1;
        for (int i = slot(key, mask); ; i = (i + 1) & mask) {
            if (values[i] == EMPTY) {
                return EMPTY;
            }
            if (keys[i] == key) {
                return values[i];
            }
        }
    }

    void put(long key, int value) {
        // At most 4/5 full: linear probing stays short, and doubling (which halves the fill) comes later.
        if ((size + 1) * 5L > keys.length * 4L) {
            resize(keys.length * 2);
        }
        int mask = keys.length - 1;
        for (int i = slot(key, mask); ; i = (i + 1) & mask) {
            if (values[i] == EMPTY) {
                keys[i] = key;
                values[i] = value;
                size++;
                return;
            }
            if (keys[i] == key) {
                values[i] = value;
                return;
            }
        }
    }

    void remove(long key) {
        int mask = keys.length - 1;
        int i = slot(key, mask);
        while (true) {
            if (values[i] == EMPTY) {
                return;
            }
            if (keys[i] == key) {
                break;
            }
            i = (i + 1) & mask;
        }
        size--;
        // Backward-shift: move later entries of the probe run into the gap, so lookups never stop early.
        int gap = i;
        for (int j = (gap + 1) & mask; values[j] != EMPTY; j = (j + 1) & mask) {
            int home = slot(keys[j], mask);
            boolean between = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
            if (!between) {
                keys[gap] = keys[j];
                values[gap] = values[j];
                gap = j;
            }
        }
        values[gap] = EMPTY;
    }

    private void resize(int capacity) {
        long[] oldKeys = keys;
        int[] oldValues = values;
        keys = new long[capacity];
        values = new int[capacity];
        Arrays.fill(values, EMPTY);
        size = 0;
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldValues[i] != EMPTY) {
                put(oldKeys[i], oldValues[i]);
            }
        }
    }

    private static int slot(long key, int mask) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32)) & mask;
    }
}
