package io.kvbroker.index;

import it.unimi.dsi.fastutil.ints.IntArrayList;
import it.unimi.dsi.fastutil.longs.Long2IntOpenHashMap;
import java.util.Arrays;

/**
 * One engine's blocks in full-attention groups: for each engine hash, its content key (when its chain is known), its
 * span, and the media holding it, in parallel primitive arrays indexed by slot.
 *
 * <p>Design note: no object per block. A slot lives while any medium holds its hash, so removals (hashes only),
 * token-less offload stores and children stored in later events all resolve through {@link #slotOf}. A slot without
 * a key is an orphan: its parent was unknown to this engine, so it is kept for removals but never scored. Keyed slots
 * are registered as holders in the index's {@link io.kvbroker.client.HolderTable}. Written by the index's writer only.
 */
final class EngineBlocks {
    static final int NONE = -1;
    /** The slot's content key is known (its chain resolved), so children can chain on it. */
    static final byte KEYED = 1;
    /** The slot is registered as a holder of its key (not a second block of this engine with the same content). */
    static final byte LINKED = 2;

    final int engineId;
    final String model;
    private final Long2IntOpenHashMap slotByHash = new Long2IntOpenHashMap();
    private final IntArrayList free = new IntArrayList();
    long[] hash = new long[16];
    long[] key = new long[16];
    byte[] media = new byte[16];
    byte[] span = new byte[16];
    byte[] flags = new byte[16];
    private int used;

    EngineBlocks(int engineId, String model) {
        this.engineId = engineId;
        this.model = model;
        slotByHash.defaultReturnValue(NONE);
    }

    int slotOf(long engineHash) {
        return slotByHash.get(engineHash);
    }

    /** Blocks held on at least one medium. */
    int size() {
        return slotByHash.size();
    }

    boolean keyed(int slot) {
        return (flags[slot] & KEYED) != 0;
    }

    boolean linked(int slot) {
        return (flags[slot] & LINKED) != 0;
    }

    /** A new slot for a hash not yet held, on no medium and without a key. */
    int allocate(long engineHash) {
        int slot;
        if (!free.isEmpty()) {
            slot = free.popInt();
        } else {
            if (used == hash.length) {
                grow();
            }
            slot = used++;
        }
        hash[slot] = engineHash;
        key[slot] = 0;
        media[slot] = 0;
        span[slot] = 0;
        flags[slot] = 0;
        slotByHash.put(engineHash, slot);
        return slot;
    }

    void free(int slot) {
        slotByHash.remove(hash[slot]);
        media[slot] = 0;
        flags[slot] = 0;
        free.push(slot);
    }

    /** Slots currently held, for clears. */
    int[] liveSlots() {
        return slotByHash.values().toIntArray();
    }

    /** Approximate heap bytes: the per-slot arrays and the hash map. */
    long memoryBytes() {
        return (long) hash.length * (8 * 2 + 3) + (long) slotByHash.size() * 12 * 4 / 3 + free.size() * 4L;
    }

    private void grow() {
        int size = hash.length * 2;
        hash = Arrays.copyOf(hash, size);
        key = Arrays.copyOf(key, size);
        media = Arrays.copyOf(media, size);
        span = Arrays.copyOf(span, size);
        flags = Arrays.copyOf(flags, size);
    }
}
