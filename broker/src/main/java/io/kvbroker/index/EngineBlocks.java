package io.kvbroker.index;

/**
 * One engine's blocks in full-attention groups: an open-addressing table from engine hash to the block's content key
 * and packed fields (media, span, flags), in three parallel arrays.
 *
 * <p>Design note: no object per block, and one table instead of a hash → slot map beside per-slot arrays: about 20
 * bytes per block at most 4/5 full. An entry lives while any medium holds its hash, so removals (hashes only),
 * token-less offload stores and children stored in later events all resolve through {@link #slotOf}. A block
 * without a key is an orphan: its parent was unknown to this engine, so it is kept for removals but never scored.
 * Keyed blocks are registered as holders in the index's {@link io.kvbroker.client.HolderTable}. A slot number is a
 * table position: valid until the next {@link #allocate} or {@link #free} of this engine, never kept longer. Written
 * by the index's writer only.
 */
final class EngineBlocks {
    static final int NONE = -1;
    /** The block's content key is known (its chain resolved), so children can chain on it. */
    static final int KEYED = 1;
    /** The block is registered as a holder of its key (not a second block of this engine with the same content). */
    static final int LINKED = 2;

    private static final int OCCUPIED = 1 << 30;
    private static final int MEDIA_MASK = 0xF;
    private static final int SPAN_SHIFT = 4;
    private static final int FLAGS_SHIFT = 12;

    final int engineId;
    final String model;
    private long[] hashes = new long[16];
    private long[] keys = new long[16];
    private int[] meta = new int[16];
    private int size;
    /** Blocks held per medium bit (GPU, CPU, storage, other), kept as media change. */
    private final long[] perMedium = new long[4];
    /** The last sequence and incarnation applied for this engine (written by the writer, read by anyone). */
    volatile long appliedSequence = -1;
    volatile long incarnation;

    EngineBlocks(int engineId, String model) {
        this.engineId = engineId;
        this.model = model;
    }

    /** The slot holding {@code engineHash}, or {@link #NONE}. */
    int slotOf(long engineHash) {
        int mask = hashes.length - 1;
        for (int i = home(engineHash, mask); ; i = (i + 1) & mask) {
            if (meta[i] == 0) {
                return NONE;
            }
            if (hashes[i] == engineHash) {
                return i;
            }
        }
    }

    /** A new slot for a hash not yet held: on no medium, without a key. */
    int allocate(long engineHash) {
        // At most 4/5 full: linear probing stays short, and doubling (which halves the fill) comes later.
        if ((size + 1) * 5L > hashes.length * 4L) {
            resize(hashes.length * 2);
        }
        int mask = hashes.length - 1;
        int i = home(engineHash, mask);
        while (meta[i] != 0) {
            i = (i + 1) & mask;
        }
        hashes[i] = engineHash;
        keys[i] = 0;
        meta[i] = OCCUPIED;
        size++;
        return i;
    }

    /** Forgets a slot; later entries of its probe run shift back so lookups never stop early. */
    void free(int slot) {
        int mask = hashes.length - 1;
        int gap = slot;
        for (int j = (gap + 1) & mask; meta[j] != 0; j = (j + 1) & mask) {
            int home = home(hashes[j], mask);
            boolean reachable = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
            if (!reachable) {
                hashes[gap] = hashes[j];
                keys[gap] = keys[j];
                meta[gap] = meta[j];
                gap = j;
            }
        }
        meta[gap] = 0;
        size--;
    }

    long key(int slot) {
        return keys[slot];
    }

    void setKey(int slot, long key) {
        keys[slot] = key;
    }

    int media(int slot) {
        return meta[slot] & MEDIA_MASK;
    }

    void setMedia(int slot, int media) {
        count(meta[slot] & MEDIA_MASK, -1);
        count(media, 1);
        meta[slot] = (meta[slot] & ~MEDIA_MASK) | (media & MEDIA_MASK);
    }

    private void count(int media, int delta) {
        for (int m = 0; m < perMedium.length; m++) {
            if ((media & 1 << m) != 0) {
                perMedium[m] += delta;
            }
        }
    }

    /** Blocks held on one medium ({@code medium} is one bit of {@link io.kvbroker.client.Media}). */
    long blocksOn(int medium) {
        return perMedium[Integer.numberOfTrailingZeros(medium)];
    }

    int span(int slot) {
        return (meta[slot] >>> SPAN_SHIFT) & 0xFF;
    }

    void setSpan(int slot, int span) {
        meta[slot] = (meta[slot] & ~(0xFF << SPAN_SHIFT)) | (span & 0xFF) << SPAN_SHIFT;
    }

    void addFlags(int slot, int flags) {
        meta[slot] |= flags << FLAGS_SHIFT;
    }

    boolean keyed(int slot) {
        return (meta[slot] & KEYED << FLAGS_SHIFT) != 0;
    }

    boolean linked(int slot) {
        return (meta[slot] & LINKED << FLAGS_SHIFT) != 0;
    }

    /** Blocks held on at least one medium. */
    int size() {
        return size;
    }

    /** The hashes held now, for clears (which free slots, so they work from hashes, not positions). */
    long[] liveHashes() {
        long[] live = new long[size];
        int n = 0;
        for (int i = 0; i < meta.length; i++) {
            if (meta[i] != 0) {
                live[n++] = hashes[i];
            }
        }
        return live;
    }

    /** Heap bytes of the table. */
    long memoryBytes() {
        return 48L + 20L * hashes.length;
    }

    private void resize(int capacity) {
        long[] oldHashes = hashes;
        long[] oldKeys = keys;
        int[] oldMeta = meta;
        hashes = new long[capacity];
        keys = new long[capacity];
        meta = new int[capacity];
        int mask = capacity - 1;
        for (int j = 0; j < oldMeta.length; j++) {
            if (oldMeta[j] != 0) {
                int i = home(oldHashes[j], mask);
                while (meta[i] != 0) {
                    i = (i + 1) & mask;
                }
                hashes[i] = oldHashes[j];
                keys[i] = oldKeys[j];
                meta[i] = oldMeta[j];
            }
        }
    }

    private static int home(long hash, int mask) {
        long h = hash * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29)) & mask;
    }
}
