package io.kvbroker.index;

import io.kvbroker.core.Media;
import it.unimi.dsi.fastutil.longs.LongArrayList;
import java.util.List;

/**
 * Keeps each engine within its quota of indexed blocks: after a batch that leaves the engine above it, evicts chain
 * tails round a clock, and brings evicted blocks back when a store shows their prefix is in use again.
 *
 * <p>Design note: what it evicts depends on nothing but the engine's own history (its quota is a fixed share of the
 * budget, the clock hand its own), so two replicas fed the same streams evict the same blocks. "Oldest first" is a
 * clock's approximation: a block stored or re-announced since the hand last passed is spared once, which costs one
 * bit per block instead of an age. Evicted entries keep their hash, key and parent, so the engine's later removals,
 * offload stores and children still resolve; beyond {@link IndexBudget#evictedCap} they are forgotten, leaves first.
 *
 * <p>Runs on the index's writer thread only, inside the write of the batch it follows (see {@link BlockIndex} on
 * threads). It registers and unregisters holders through {@link HolderLinks}, so each holder change it makes is noted
 * for the journal and Watch like any other of the write.
 */
final class ClockEviction {
    private final IndexBudget budget;
    private final IndexStats.Counts counts;
    private final HolderLinks links;

    ClockEviction(IndexBudget budget, IndexStats.Counts counts, HolderLinks links) {
        this.budget = budget;
        this.counts = counts;
        this.links = links;
    }

    /**
     * At the end of a batch: evicts if the engine is above its quota, noting what it evicted in {@code changes}
     * (null: the batch is not resolved).
     */
    void afterBatch(EngineBlocks blocks, List<ResolvedBatch.Change> changes) {
        if (blocks.indexedCount() > budget.quotaBlocks()) {
            evict(blocks, changes);
        }
    }

    /**
     * Restores {@code id} and its ancestors while they are evicted. A store under an evicted block shows its prefix is
     * in use: the ancestors come back, so no indexed block ever sits below an evicted one, and eviction takes colder
     * tails instead.
     */
    void restoreFrom(EngineBlocks blocks, int id) {
        for (int up = id; up != EngineBlocks.NONE && blocks.evicted(up); up = blocks.parent(up)) {
            restore(blocks, up);
        }
    }

    /** Brings an evicted block back into the index (announced again, or a prefix of a block stored now). */
    void restore(EngineBlocks blocks, int id) {
        blocks.setEvicted(id, false);
        blocks.addFlags(id, EngineBlocks.REFERENCED);
        if (blocks.keyed(id) && !blocks.linked(id)) {
            links.link(blocks, id);
        }
        counts.restoredBlocks++;
    }

    /**
     * Brings an engine back within its quota, down to {@link IndexBudget#lowWater}: evicts chain tails (indexed blocks
     * without indexed children), storage-only ones first, then those held on CPU or storage only, then GPU ones,
     * sparing once a block referenced since the hand last passed. Evicted entries beyond
     * {@link IndexBudget#evictedCap} that have no children are forgotten on the way.
     */
    private void evict(EngineBlocks blocks, List<ResolvedBatch.Change> changes) {
        long target = budget.lowWater();
        LongArrayList evictedHashes = changes != null ? new LongArrayList() : null;
        LongArrayList evictedKeys = changes != null ? new LongArrayList() : null;
        for (int tier = 0; tier < 3 && blocks.indexedCount() > target; tier++) {
            // Round and round until two whole rounds evict nothing: the first may only clear second-chance bits.
            for (long idle = 0; idle < 2L * blocks.idBound() && blocks.indexedCount() > target; idle++) {
                int id = blocks.advanceHand();
                if (!blocks.used(id)) {
                    continue;
                }
                if (blocks.evicted(id)) {
                    if (blocks.evictedCount() > budget.evictedCap() && blocks.children(id) == 0) {
                        forget(blocks, id);
                    }
                    continue;
                }
                if (!evictable(blocks, id, tier)) {
                    continue;
                }
                if (blocks.has(id, EngineBlocks.REFERENCED)) {
                    blocks.clearFlags(id, EngineBlocks.REFERENCED);
                    continue;
                }
                // Up the chain while its blocks become tails that the hand would take anyway.
                do {
                    int parent = blocks.parent(id);
                    links.unlink(blocks, id);
                    blocks.setEvicted(id, true);
                    counts.evictedBlocks++;
                    if (evictedHashes != null) {
                        evictedHashes.add(blocks.hash(id));
                        evictedKeys.add(blocks.keyed(id) ? blocks.key(id) : 0);
                    }
                    id = parent;
                } while (id != EngineBlocks.NONE && blocks.indexedCount() > target && evictable(blocks, id, tier)
                        && !blocks.has(id, EngineBlocks.REFERENCED));
                idle = 0;
            }
        }
        if (evictedHashes != null && !evictedHashes.isEmpty()) {
            changes.add(new ResolvedBatch.Evict(evictedHashes.toLongArray(), evictedKeys.toLongArray()));
        }
    }

    private static boolean evictable(EngineBlocks blocks, int id, int tier) {
        return blocks.indexed(id) && blocks.indexedChildren(id) == 0 && tierOf(blocks.media(id)) <= tier;
    }

    /** 0: storage or unknown tiers only; 1: CPU without GPU; 2: on GPU. */
    private static int tierOf(int media) {
        if ((media & Media.GPU) != 0) {
            return 2;
        }
        return (media & Media.CPU) != 0 ? 1 : 0;
    }

    /** Drops an evicted entry altogether: a later event naming its hash will find nothing (counted then). */
    private void forget(EngineBlocks blocks, int id) {
        blocks.setMedia(id, 0);
        blocks.release(id);
        counts.forgottenBlocks++;
    }
}
