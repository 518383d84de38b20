package io.kvbroker.index;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.event.BlockStored;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Applies stores to an engine's blocks: keys each block of a chain from its parent's key while the chain is known,
 * keeps orphans (blocks whose parent the engine does not hold) unkeyed until their chain is announced again from a
 * known parent, and resolves the offloading connector's token-less stores through the engine's earlier store.
 *
 * <p>Design note: a store and its replay from the journal run the same code, the replay taking the keys the store
 * logged instead of computing them, so an engine restored from its log ends exactly as it was. A store of a block
 * the budget evicted, or of a block below one, restores the evicted chain above it ({@link ClockEviction}). Runs on
 * the index's writer thread only (see {@link BlockIndex} on threads).
 */
final class ChainStores {
    /** Chunks a block may span (7 bits in {@link EngineBlocks}); larger blocks are kept for removals, never keyed. */
    static final int MAX_SPAN = 127;

    private final int granularity;
    private final ContentKeys writerKeys;
    private final Map<String, Long> roots = new HashMap<>();
    private final IndexStats.Counts counts;
    private final HolderLinks links;
    private final ClockEviction eviction;

    ChainStores(int granularity, IndexStats.Counts counts, HolderLinks links, ClockEviction eviction) {
        this.granularity = granularity;
        this.writerKeys = new ContentKeys(granularity);
        this.counts = counts;
        this.links = links;
        this.eviction = eviction;
    }

    /**
     * Applies one store event and returns it as the journal logs it, with each block's key as a replay needs it (the
     * keys only when {@code resolve} is set: the return value is for resolved batches), or null if the event's group
     * is not one the index keeps.
     */
    ResolvedBatch.Store store(EngineBlocks blocks, BlockStored stored, boolean resolve) {
        long[] hashes = stored.blockHashes();
        if (!stored.kind().reusablePrefix()) {
            counts.skippedOtherGroups += hashes.length;
            return null;
        }
        int medium = BlockIndex.bit(stored.medium());
        if (stored.tokenless()) {
            storeTokenless(blocks, hashes, medium);
            return new ResolvedBatch.Store(hashes, false, 0, 0, null, medium);
        }
        int blockSize = stored.blockSize();
        int[] tokens = stored.tokenIds();
        boolean keyable = blockSize > 0 && blockSize % granularity == 0 && tokens.length == hashes.length * blockSize
                && blockSize / granularity <= MAX_SPAN;
        int span = keyable ? blockSize / granularity : 0;
        if (!keyable) {
            counts.unkeyableBlocks += hashes.length;
        }
        long[] used = resolve ? new long[hashes.length] : null;
        long root = stored.hasParent() ? 0 : root(blocks.model, stored.loraName());
        storeChain(blocks, hashes, stored.hasParent(), stored.parentHash(), medium, span, root, (b, parentKey) -> {
            List<Object> extra = stored.extraKeys() == null || b >= stored.extraKeys().size() ? null
                    : ContentKeys.normalizeExtra(stored.extraKeys().get(b), stored.loraName());
            return writerKeys.block(parentKey, tokens, b * blockSize, span, extra);
        }, used);
        return new ResolvedBatch.Store(hashes, stored.hasParent(), stored.parentHash(), span, used, medium);
    }

    /** Replays a store the journal logged: the same changes through the same code, its keys taken as logged. */
    void replay(EngineBlocks blocks, ResolvedBatch.Store store) {
        if (store.tokenless()) {
            storeTokenless(blocks, store.hashes(), store.medium());
        } else {
            storeChain(blocks, store.hashes(), store.hasParent(), store.parentHash(), store.medium(), store.span(), 0,
                    (b, parentKey) -> store.keys()[b], null);
        }
    }

    /** The offloading connector's announcement: resolvable only through this engine's earlier store of the hash. */
    private void storeTokenless(EngineBlocks blocks, long[] hashes, int medium) {
        for (long hash : hashes) {
            int id = blocks.idOf(hash);
            if (id == EngineBlocks.NONE) {
                id = blocks.allocate(hash);
                counts.orphanBlocks++;
            } else if (blocks.media(id) == 0) {
                counts.orphanBlocks++;
            }
            addMedium(blocks, id, medium);
            if (blocks.indexed(id)) {
                // A ghost held again: its chain above must be indexed too.
                eviction.restoreFrom(blocks, blocks.parent(id));
            }
            counts.storedBlocks++;
        }
    }

    /** The key of a chain's block {@code b}, given its parent's key; 0 for none. */
    @FunctionalInterface
    private interface ChunkKeys {
        long key(int b, long parentKey);
    }

    /**
     * Stores a chain of blocks, each keyed from its parent's key while the chain is known; {@code used}, when given,
     * receives each block's key (0 where it got none), which is what a replay of the store needs.
     *
     * @param root the key before the first block when the chain has no parent (unused when keys are given)
     */
    private void storeChain(EngineBlocks blocks, long[] hashes, boolean hasParent, long parentHash, int medium,
            int span, long root, ChunkKeys keys, long[] used) {
        long parentKey = root;
        boolean chainKnown = !hasParent;
        int parent = EngineBlocks.NONE;
        if (hasParent) {
            parent = blocks.idOf(parentHash);
            chainKnown = parent != EngineBlocks.NONE && blocks.keyed(parent);
            if (chainKnown) {
                parentKey = blocks.key(parent);
            }
        }
        eviction.restoreFrom(blocks, parent);
        for (int b = 0; b < hashes.length; b++) {
            int id = blocks.idOf(hashes[b]);
            boolean fresh = id == EngineBlocks.NONE;
            if (fresh) {
                id = blocks.allocate(hashes[b]);
            } else {
                blocks.addFlags(id, EngineBlocks.REFERENCED);
            }
            if (parent != EngineBlocks.NONE && parent != id && blocks.parent(id) != parent) {
                blocks.setParent(id, parent);
            }
            if (blocks.evicted(id)) {
                eviction.restore(blocks, id);
            }
            addMedium(blocks, id, medium);
            counts.storedBlocks++;
            long key = span > 0 && chainKnown ? keys.key(b, parentKey) : 0;
            if (key != 0) {
                if (!blocks.keyed(id)) {
                    if (!fresh) {
                        counts.rerootedBlocks++;
                    }
                    blocks.setKey(id, key);
                    blocks.setSpan(id, span);
                    blocks.addFlags(id, EngineBlocks.KEYED);
                }
                if (!blocks.linked(id)) {
                    links.link(blocks, id);
                }
                parentKey = key;
            } else {
                chainKnown = false;
                if (fresh && span > 0) {
                    counts.orphanBlocks++;
                }
            }
            if (used != null) {
                used[b] = key;
            }
            parent = id;
        }
    }

    private void addMedium(EngineBlocks blocks, int id, int medium) {
        int before = blocks.media(id);
        int after = before | medium;
        if (after != before) {
            blocks.setMedia(id, after);
            links.mediaChanged(blocks, id);
        }
    }

    private long root(String model, String loraName) {
        return roots.computeIfAbsent(model + '\u0000' + (loraName == null ? "" : loraName),
                k -> writerKeys.root(model, loraName));
    }
}
