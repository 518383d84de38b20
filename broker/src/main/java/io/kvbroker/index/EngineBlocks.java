package io.kvbroker.index;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * One engine's blocks in full-attention groups: each block's engine hash, content key, parent, media, span and state
 * under a stable small id, found by engine hash through an open-addressing table of ids.
 *
 * <p>Design note: ids are stable (a freed id is reused only after the block is gone), so a block can name its parent
 * by a 4-byte id and every block knows how many children it has; that is what lets eviction take only chain tails.
 * Per block: hash 8 + key 8 + fields 4 (child counts included) + parent 4 bytes in parallel arrays, plus 4 bytes a
 * table slot at most 3/4 full; no object per block. An entry lives while any medium holds its hash, so removals (hashes
 * only), token-less offload stores and children stored in later events all resolve through {@link #idOf}.
 *
 * <p>A block is <em>indexed</em> when some medium holds it and the budget has not evicted it. Two other states keep
 * an entry without indexing it: <em>evicted</em> (the engine still holds it, the index dropped it for its quota; the
 * key stays so later removals, offload stores and children still resolve) and <em>ghost</em> (no medium holds it any
 * more, but children still name it as their parent; it goes with its last child). Every change of media, eviction or
 * parent goes through this class, which keeps the parent's child counts right. Written by the index's writer only.
 */
final class EngineBlocks {
    static final int NONE = -1;
    /** The block's content key is known (its chain resolved), so children can chain on it. */
    static final int KEYED = 1;
    /** The block is registered as a holder of its key (not a second block of this engine with the same content). */
    static final int LINKED = 2;
    /** Dropped from the index for the engine's quota, though the engine still holds it. */
    static final int EVICTED = 4;
    /** Stored or re-announced since the eviction hand last passed: spared once (a clock's second chance). */
    static final int REFERENCED = 8;

    private static final int USED = 1 << 31;
    private static final int MEDIA_MASK = 0xF;
    private static final int SPAN_SHIFT = 4;
    private static final int SPAN_MASK = 0x7F;
    private static final int FLAGS_SHIFT = 11;
    /** Children naming the block (8 bits), then the indexed ones among them (8 bits). */
    private static final int KIDS_SHIFT = 15;
    private static final int INDEXED_KIDS_SHIFT = 23;
    /**
     * Child counts saturate here: a block with this many children (a system prompt's last block, typically) is never
     * freed or evicted before a clear. Eight bits each keep the counts inside the fields word.
     */
    private static final int KIDS_MAX = 0xFF;

    final int engineId;
    final String model;
    /** Slot → id + 1 (0: empty). */
    private int[] table = new int[32];
    private long[] hashes = new long[16];
    private long[] keys = new long[16];
    /** USED, child counts, flags, span and media, packed. */
    private int[] fields = new int[16];
    /** The parent's id, or {@link #NONE}; for a free id, the next free id. */
    private int[] parents = new int[16];
    private int idBound;
    private int freeHead = NONE;
    private int used;
    private int indexed;
    private int evicted;
    private final long[] perMedium = new long[4];
    private int hand;
    /** Blocks evicted since the engine's state was created or last cleared. */
    long evictions;
    /** The last sequence and incarnation applied for this engine (written by the writer, read by anyone). */
    volatile long appliedSequence = -1;
    volatile long incarnation;
    /** The payload fingerprint of the last applied batch (0: none) and the broker sequence it was applied under. */
    volatile long fingerprint;
    volatile long brokerSequence;

    EngineBlocks(int engineId, String model) {
        this.engineId = engineId;
        this.model = model;
    }

    /** The id of the block with {@code engineHash}, or {@link #NONE}. */
    int idOf(long engineHash) {
        int mask = table.length - 1;
        for (int i = home(engineHash, mask); ; i = (i + 1) & mask) {
            int entry = table[i];
            if (entry == 0) {
                return NONE;
            }
            if (hashes[entry - 1] == engineHash) {
                return entry - 1;
            }
        }
    }

    /** A new block for a hash not yet held: on no medium, without a key or parent, referenced. */
    int allocate(long engineHash) {
        int id;
        if (freeHead != NONE) {
            id = freeHead;
            freeHead = parents[id];
        } else {
            if (idBound == hashes.length) {
                grow(hashes.length + (hashes.length >> 1));
            }
            id = idBound++;
        }
        hashes[id] = engineHash;
        keys[id] = 0;
        fields[id] = USED | REFERENCED << FLAGS_SHIFT;
        parents[id] = NONE;
        used++;
        // At most 3/4 full: linear probing stays short; a slot costs only 4 bytes.
        if (used * 4L > table.length * 3L) {
            rehash(table.length * 2);
        }
        int mask = table.length - 1;
        int i = home(engineHash, mask);
        while (table[i] != 0) {
            i = (i + 1) & mask;
        }
        table[i] = id + 1;
        return id;
    }

    /**
     * Lets go of a block no medium holds: freed unless children still name it (then it stays, a ghost, until its last
     * child goes), and a ghost parent left without children goes with it.
     */
    void release(int id) {
        while (id != NONE && (fields[id] & MEDIA_MASK) == 0 && children(id) == 0) {
            int parent = parents[id];
            if (parent != NONE) {
                adjustKids(parent, -1, 0);
            }
            if (evicted(id)) {
                evicted--;
            }
            unlinkSlot(id);
            fields[id] = 0;
            parents[id] = freeHead;
            freeHead = id;
            used--;
            id = parent;
        }
    }

    // ---- fields ----

    boolean used(int id) {
        return fields[id] < 0;
    }

    long hash(int id) {
        return hashes[id];
    }

    long key(int id) {
        return keys[id];
    }

    void setKey(int id, long key) {
        keys[id] = key;
    }

    int media(int id) {
        return fields[id] & MEDIA_MASK;
    }

    /** Changes the media holding a block; the caller releases it when none is left. */
    void setMedia(int id, int media) {
        boolean wasIndexed = indexed(id);
        count(fields[id] & MEDIA_MASK, -1);
        count(media, 1);
        fields[id] = (fields[id] & ~MEDIA_MASK) | (media & MEDIA_MASK);
        indexedChanged(id, wasIndexed);
    }

    int span(int id) {
        return (fields[id] >>> SPAN_SHIFT) & SPAN_MASK;
    }

    void setSpan(int id, int span) {
        fields[id] = (fields[id] & ~(SPAN_MASK << SPAN_SHIFT)) | (span & SPAN_MASK) << SPAN_SHIFT;
    }

    boolean has(int id, int flag) {
        return (fields[id] & flag << FLAGS_SHIFT) != 0;
    }

    void addFlags(int id, int flags) {
        fields[id] |= flags << FLAGS_SHIFT;
    }

    void clearFlags(int id, int flags) {
        fields[id] &= ~(flags << FLAGS_SHIFT);
    }

    boolean keyed(int id) {
        return has(id, KEYED);
    }

    boolean linked(int id) {
        return has(id, LINKED);
    }

    boolean evicted(int id) {
        return has(id, EVICTED);
    }

    /** Held on some medium and not evicted: counted against the quota, and what a parent's indexed children count. */
    boolean indexed(int id) {
        return (fields[id] & MEDIA_MASK) != 0 && !evicted(id);
    }

    void setEvicted(int id, boolean value) {
        if (value == evicted(id)) {
            return;
        }
        boolean wasIndexed = indexed(id);
        if (value) {
            addFlags(id, EVICTED);
            evicted++;
            evictions++;
        } else {
            clearFlags(id, EVICTED);
            evicted--;
        }
        indexedChanged(id, wasIndexed);
    }

    int parent(int id) {
        return parents[id];
    }

    /** Names a block's parent; the old parent (if any) loses a child and may go if it was a ghost. */
    void setParent(int id, int parent) {
        int old = parents[id];
        if (old == parent) {
            return;
        }
        int indexedDelta = indexed(id) ? 1 : 0;
        parents[id] = parent;
        if (parent != NONE) {
            adjustKids(parent, 1, indexedDelta);
        }
        if (old != NONE) {
            adjustKids(old, -1, -indexedDelta);
            release(old);
        }
    }

    /** Children naming this block, in any state. */
    int children(int id) {
        return (fields[id] >>> KIDS_SHIFT) & KIDS_MAX;
    }

    /** Indexed children: a block with none is a chain tail, the only kind eviction may take. */
    int indexedChildren(int id) {
        return (fields[id] >>> INDEXED_KIDS_SHIFT) & KIDS_MAX;
    }

    // ---- eviction's clock ----

    /** The next id under the eviction hand; the hand goes round the ids. */
    int advanceHand() {
        if (hand >= idBound) {
            hand = 0;
        }
        return hand++;
    }

    int idBound() {
        return idBound;
    }

    // ---- sizes ----

    /** Entries in any state. */
    int size() {
        return used;
    }

    /** Blocks counted against the quota. */
    int indexedCount() {
        return indexed;
    }

    int evictedCount() {
        return evicted;
    }

    /** Blocks held on one medium ({@code medium} is one bit of {@link io.kvbroker.core.Media}), evicted included. */
    long blocksOn(int medium) {
        return perMedium[Integer.numberOfTrailingZeros(medium)];
    }

    /** The ids in use now, for clears (which may free entries as they go). */
    int[] usedIds() {
        int[] ids = new int[used];
        int n = 0;
        for (int id = 0; id < idBound; id++) {
            if (fields[id] < 0) {
                ids[n++] = id;
            }
        }
        return ids;
    }

    /** Heap bytes of the arrays. */
    long memoryBytes() {
        return 112L + 4L * table.length + 24L * hashes.length;
    }

    // ---- checkpoints ----

    private static final int CHECKPOINT_VERSION = 2;

    /** This engine's table as bytes: everything but the slot table, which {@link #read} rebuilds. */
    byte[] write() {
        int n = idBound;
        ByteBuffer out = ByteBuffer.allocate(4 + 8 * 5 + 4 * 6 + 8 * 4 + n * 24);
        out.putInt(CHECKPOINT_VERSION);
        out.putLong(appliedSequence).putLong(incarnation).putLong(fingerprint).putLong(brokerSequence)
                .putLong(evictions);
        out.putInt(hand).putInt(n).putInt(freeHead).putInt(used).putInt(indexed).putInt(evicted);
        for (long count : perMedium) {
            out.putLong(count);
        }
        out.asLongBuffer().put(hashes, 0, n);
        out.position(out.position() + 8 * n);
        out.asLongBuffer().put(keys, 0, n);
        out.position(out.position() + 8 * n);
        out.asIntBuffer().put(fields, 0, n);
        out.position(out.position() + 4 * n);
        out.asIntBuffer().put(parents, 0, n);
        return out.array();
    }

    /** An engine's table from {@link #write}'s bytes. */
    static EngineBlocks read(int engineId, String model, byte[] bytes) {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        int version = in.getInt();
        if (version != CHECKPOINT_VERSION) {
            throw new IllegalArgumentException("checkpoint format " + version + ", this release reads "
                    + CHECKPOINT_VERSION);
        }
        EngineBlocks b = new EngineBlocks(engineId, model);
        b.appliedSequence = in.getLong();
        b.incarnation = in.getLong();
        b.fingerprint = in.getLong();
        b.brokerSequence = in.getLong();
        b.evictions = in.getLong();
        b.hand = in.getInt();
        int n = in.getInt();
        b.freeHead = in.getInt();
        b.used = in.getInt();
        b.indexed = in.getInt();
        b.evicted = in.getInt();
        for (int m = 0; m < b.perMedium.length; m++) {
            b.perMedium[m] = in.getLong();
        }
        b.grow(Math.max(16, n));
        b.idBound = n;
        in.asLongBuffer().get(b.hashes, 0, n);
        in.position(in.position() + 8 * n);
        in.asLongBuffer().get(b.keys, 0, n);
        in.position(in.position() + 8 * n);
        in.asIntBuffer().get(b.fields, 0, n);
        in.position(in.position() + 4 * n);
        in.asIntBuffer().get(b.parents, 0, n);
        int capacity = 32;
        while (b.used * 4L > capacity * 3L) {
            capacity *= 2;
        }
        b.table = new int[capacity];
        int mask = capacity - 1;
        for (int id = 0; id < n; id++) {
            if (b.fields[id] < 0) {
                int i = home(b.hashes[id], mask);
                while (b.table[i] != 0) {
                    i = (i + 1) & mask;
                }
                b.table[i] = id + 1;
            }
        }
        return b;
    }

    // ---- internals ----

    private void indexedChanged(int id, boolean wasIndexed) {
        boolean isIndexed = indexed(id);
        if (isIndexed == wasIndexed) {
            return;
        }
        int delta = isIndexed ? 1 : -1;
        indexed += delta;
        if (parents[id] != NONE) {
            adjustKids(parents[id], 0, delta);
        }
    }

    private void adjustKids(int id, int allDelta, int indexedDelta) {
        int all = children(id);
        int idx = indexedChildren(id);
        // A saturated count stops moving: its block is pinned until a clear, never freed under a live child.
        if (all != KIDS_MAX) {
            all = Math.min(KIDS_MAX, all + allDelta);
        }
        if (idx != KIDS_MAX) {
            idx = Math.min(KIDS_MAX, idx + indexedDelta);
        }
        fields[id] = (fields[id] & ~(KIDS_MAX << KIDS_SHIFT | KIDS_MAX << INDEXED_KIDS_SHIFT)) | all << KIDS_SHIFT
                | idx << INDEXED_KIDS_SHIFT;
    }

    private void count(int media, int delta) {
        for (int m = 0; m < perMedium.length; m++) {
            if ((media & 1 << m) != 0) {
                perMedium[m] += delta;
            }
        }
    }

    /** Removes an id's table slot; later entries of its probe run shift back so lookups never stop early. */
    private void unlinkSlot(int id) {
        int mask = table.length - 1;
        int gap = home(hashes[id], mask);
        while (table[gap] != id + 1) {
            gap = (gap + 1) & mask;
        }
        for (int j = (gap + 1) & mask; table[j] != 0; j = (j + 1) & mask) {
            int home = home(hashes[table[j] - 1], mask);
            boolean reachable = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
            if (!reachable) {
                table[gap] = table[j];
                gap = j;
            }
        }
        table[gap] = 0;
    }

    private void grow(int capacity) {
        hashes = Arrays.copyOf(hashes, capacity);
        keys = Arrays.copyOf(keys, capacity);
        fields = Arrays.copyOf(fields, capacity);
        parents = Arrays.copyOf(parents, capacity);
    }

    private void rehash(int capacity) {
        int[] fresh = new int[capacity];
        int mask = capacity - 1;
        for (int entry : table) {
            if (entry != 0) {
                int i = home(hashes[entry - 1], mask);
                while (fresh[i] != 0) {
                    i = (i + 1) & mask;
                }
                fresh[i] = entry;
            }
        }
        table = fresh;
    }

    private static int home(long hash, int mask) {
        long h = hash * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29)) & mask;
    }
}
