package io.kvbroker.index;

import io.kvbroker.client.ContentKeys;
import io.kvbroker.client.Media;
import io.kvbroker.client.PrefixScore;
import io.kvbroker.client.PrefixScorer;
import io.kvbroker.client.ResidencyView;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import io.kvbroker.ingest.IngestSink;
import it.unimi.dsi.fastutil.longs.Long2LongOpenHashMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.IntFunction;

/**
 * The global block index: for every content key, the engines holding a block recorded under it, with span and
 * media; fed by ingest as an {@link IngestSink}, read by Score and Lookup.
 *
 * <p>Design note: keys come from {@link ContentKeys} (the same code gateways run), so queries never depend on an
 * engine's own hash. Each key's holders form a doubly linked list threaded through the engines' slot arrays
 * ({@link EngineBlocks}), so adding or removing a residency is O(1) and nothing is allocated per block. Only
 * full-attention groups enter: stores and removals of other (or unknown) groups are counted and skipped, so a
 * sliding-window eviction can never delete the full-attention entry of the same hash. Repeated stores are
 * idempotent, and a removal removes its hash from that medium however many stores preceded it (vLLM's "full" report
 * mode re-announces blocks that are not new copies; counting copies would leave stale entries, while this rule can
 * only drop a block early when two physical copies exist and one is evicted).
 *
 * <p>Concurrency, interim: one writer (the ingest thread) takes the write lock per batch; queries take the read lock.
 * Both hold it for microseconds. A lock-free read path is the index issue's next step.
 */
public final class BlockIndex implements IngestSink, ResidencyView {
    private static final long NONE = -1L;

    private final IntFunction<String> modelOf;
    private final int granularity;
    private final PrefixScorer.Weights weights;
    private final ContentKeys writerKeys;
    private final Map<String, Long> roots = new HashMap<>();
    private final Long2LongOpenHashMap head = new Long2LongOpenHashMap();
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final ThreadLocal<ContentKeys> readerKeys;
    private final ThreadLocal<PrefixScorer> scorers;
    private EngineBlocks[] engines = new EngineBlocks[16];
    private int maxSpan = 1;
    private final IndexStats.Counts counts = new IndexStats.Counts();

    /**
     * @param modelOf the model an engine serves, by engine id
     * @param granularity tokens per chunk (vLLM's hash block size, 16, by default)
     */
    public BlockIndex(IntFunction<String> modelOf, int granularity, PrefixScorer.Weights weights) {
        this.modelOf = modelOf;
        this.granularity = granularity;
        this.weights = weights;
        this.writerKeys = new ContentKeys(granularity);
        this.readerKeys = ThreadLocal.withInitial(() -> new ContentKeys(granularity));
        this.scorers = ThreadLocal.withInitial(() -> new PrefixScorer(weights));
        head.defaultReturnValue(NONE);
    }

    public int granularity() {
        return granularity;
    }

    // ---- writes (the ingest thread) ----

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        lock.writeLock().lock();
        try {
            EngineBlocks blocks = engine(engineId);
            for (KvEvent event : batch.events()) {
                if (event instanceof BlockStored stored) {
                    store(blocks, stored);
                } else if (event instanceof BlockRemoved removed) {
                    remove(blocks, removed);
                } else if (event instanceof AllBlocksCleared cleared) {
                    clear(blocks, cleared.medium() == Medium.UNSPECIFIED ? Media.ALL
                            : bit(cleared.medium()));
                }
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    @Override
    public void onReset(int engineId, long incarnation, ResetReason reason) {
        lock.writeLock().lock();
        try {
            if (engineId < engines.length && engines[engineId] != null) {
                clear(engines[engineId], Media.ALL);
                if (reason == ResetReason.REMOVED) {
                    engines[engineId] = null;
                }
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    @Override
    public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
        // What the engine did in that range is unknown; its later removals of blocks we never saw are harmless.
    }

    private void store(EngineBlocks blocks, BlockStored stored) {
        if (!stored.kind().reusablePrefix()) {
            counts.skippedOtherGroups += stored.blockHashes().length;
            return;
        }
        int medium = bit(stored.medium());
        long[] hashes = stored.blockHashes();
        if (stored.tokenless()) {
            // The offloading connector's announcement: resolvable only through this engine's earlier store of the hash.
            for (long hash : hashes) {
                int slot = blocks.slotOf(hash);
                if (slot == EngineBlocks.NONE) {
                    slot = blocks.allocate(hash);
                    counts.orphanBlocks++;
                }
                blocks.media[slot] |= (byte) medium;
                counts.storedBlocks++;
            }
            return;
        }
        int blockSize = stored.blockSize();
        int[] tokens = stored.tokenIds();
        boolean keyable = blockSize > 0 && blockSize % granularity == 0 && tokens.length == hashes.length * blockSize
                && blockSize / granularity <= Byte.MAX_VALUE;
        int span = keyable ? blockSize / granularity : 0;
        long parentKey = 0;
        boolean chainKnown;
        if (!stored.hasParent()) {
            parentKey = root(blocks.model, stored.loraName());
            chainKnown = true;
        } else {
            int parentSlot = blocks.slotOf(stored.parentHash());
            chainKnown = parentSlot != EngineBlocks.NONE && blocks.keyed(parentSlot);
            if (chainKnown) {
                parentKey = blocks.key[parentSlot];
            }
        }
        if (!keyable) {
            counts.unkeyableBlocks += hashes.length;
        }
        for (int b = 0; b < hashes.length; b++) {
            int slot = blocks.slotOf(hashes[b]);
            boolean fresh = slot == EngineBlocks.NONE;
            if (fresh) {
                slot = blocks.allocate(hashes[b]);
            }
            blocks.media[slot] |= (byte) medium;
            counts.storedBlocks++;
            if (keyable && chainKnown) {
                List<Object> extra = stored.extraKeys() == null || b >= stored.extraKeys().size() ? null
                        : ContentKeys.normalizeExtra(stored.extraKeys().get(b), stored.loraName());
                long key = writerKeys.block(parentKey, tokens, b * blockSize, span, extra);
                if (!blocks.keyed(slot)) {
                    if (!fresh) {
                        counts.rerootedBlocks++;
                    }
                    blocks.key[slot] = key;
                    blocks.span[slot] = (byte) span;
                    blocks.flags[slot] |= EngineBlocks.KEYED;
                    link(blocks, slot);
                    maxSpan = Math.max(maxSpan, span);
                }
                parentKey = key;
            } else {
                chainKnown = false;
                if (fresh && keyable) {
                    counts.orphanBlocks++;
                }
            }
        }
    }

    private void remove(EngineBlocks blocks, BlockRemoved removed) {
        if (!removed.kind().reusablePrefix()) {
            counts.skippedOtherGroups += removed.blockHashes().length;
            return;
        }
        int medium = bit(removed.medium());
        for (long hash : removed.blockHashes()) {
            int slot = blocks.slotOf(hash);
            if (slot == EngineBlocks.NONE) {
                counts.unknownRemovals++;
                continue;
            }
            drop(blocks, slot, medium);
            counts.removedBlocks++;
        }
    }

    private void clear(EngineBlocks blocks, int media) {
        for (int slot : blocks.liveSlots()) {
            drop(blocks, slot, media);
        }
        counts.clears++;
    }

    private void drop(EngineBlocks blocks, int slot, int media) {
        blocks.media[slot] &= (byte) ~media;
        if (blocks.media[slot] == 0) {
            if (blocks.keyed(slot)) {
                unlink(blocks, slot);
            }
            blocks.free(slot);
        }
    }

    private void link(EngineBlocks blocks, int slot) {
        long key = blocks.key[slot];
        long first = head.get(key);
        long self = ref(blocks.engineId, slot);
        blocks.next[slot] = first;
        blocks.prev[slot] = NONE;
        if (first != NONE) {
            engines[engineOf(first)].prev[slotOf(first)] = self;
        }
        head.put(key, self);
    }

    private void unlink(EngineBlocks blocks, int slot) {
        long before = blocks.prev[slot];
        long after = blocks.next[slot];
        if (before == NONE) {
            if (after == NONE) {
                head.remove(blocks.key[slot]);
            } else {
                head.put(blocks.key[slot], after);
            }
        } else {
            engines[engineOf(before)].next[slotOf(before)] = after;
        }
        if (after != NONE) {
            engines[engineOf(after)].prev[slotOf(after)] = before;
        }
    }

    private EngineBlocks engine(int engineId) {
        if (engineId >= engines.length) {
            engines = Arrays.copyOf(engines, Math.max(engineId + 1, engines.length * 2));
        }
        EngineBlocks blocks = engines[engineId];
        if (blocks == null) {
            blocks = new EngineBlocks(engineId, modelOf.apply(engineId));
            engines[engineId] = blocks;
        }
        return blocks;
    }

    private long root(String model, String loraName) {
        return roots.computeIfAbsent(model + '\u0000' + (loraName == null ? "" : loraName),
                k -> writerKeys.root(model, loraName));
    }

    static int bit(Medium medium) {
        return switch (medium.effective()) {
            case GPU -> Media.GPU;
            case CPU -> Media.CPU;
            case STORAGE -> Media.STORAGE;
            default -> Media.OTHER;
        };
    }

    private static long ref(int engineId, int slot) {
        return ((long) engineId << 32) | (slot & 0xFFFFFFFFL);
    }

    private static int engineOf(long ref) {
        return (int) (ref >>> 32);
    }

    private static int slotOf(long ref) {
        return (int) ref;
    }

    // ---- reads (any thread) ----

    /** The view Score walks; callers hold the read lock (see {@link #score}). */
    @Override
    public void forEachHolder(long key, HolderVisitor visitor) {
        long ref = head.get(key);
        while (ref != NONE) {
            EngineBlocks blocks = engines[engineOf(ref)];
            int slot = slotOf(ref);
            visitor.holder(blocks.engineId, blocks.span[slot], blocks.media[slot]);
            ref = blocks.next[slot];
        }
    }

    @Override
    public int maxSpan() {
        return maxSpan;
    }

    @Override
    public int engineIdBound() {
        return engines.length;
    }

    /**
     * Scores a prompt given as token ids (capped at {@code floor((n - 1) / g)} chunks, as the engine recomputes the
     * last token) or as content keys (all scored).
     */
    public List<PrefixScore> score(String model, String loraName, int[] tokens, long[] keys, int[] engineFilter,
            int topK, int minTokens) {
        long[] chain = keys;
        int chunks = keys == null ? 0 : keys.length;
        if (tokens != null) {
            chain = readerKeys.get().promptKeys(model, loraName, tokens);
            chunks = Math.min(chain.length, PrefixScorer.chunksToScore(tokens.length, granularity));
        }
        lock.readLock().lock();
        try {
            return scorers.get().score(chain, chunks, granularity, this, engineFilter, topK, minTokens);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** One engine holding a looked-up block. */
    public record Holder(int engineId, int media) {
    }

    /** For each content key, the engines holding a block recorded under it. */
    public List<List<Holder>> lookupKeys(long[] keys) {
        lock.readLock().lock();
        try {
            List<List<Holder>> result = new ArrayList<>(keys.length);
            for (long key : keys) {
                List<Holder> holders = new ArrayList<>();
                forEachHolder(key, (engineId, span, media) -> holders.add(new Holder(engineId, media)));
                result.add(holders);
            }
            return result;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** For each engine hash, the engines holding it (orphans included: engine hashes are engine-local). */
    public List<List<Holder>> lookupHashes(long[] hashes) {
        lock.readLock().lock();
        try {
            List<List<Holder>> result = new ArrayList<>(hashes.length);
            for (long hash : hashes) {
                List<Holder> holders = new ArrayList<>();
                for (EngineBlocks blocks : engines) {
                    int slot = blocks == null ? EngineBlocks.NONE : blocks.slotOf(hash);
                    if (slot != EngineBlocks.NONE) {
                        holders.add(new Holder(blocks.engineId, blocks.media[slot]));
                    }
                }
                result.add(holders);
            }
            return result;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Totals and counters, read consistently. */
    public IndexStats stats() {
        lock.readLock().lock();
        try {
            long residencies = 0;
            long memory = (long) head.size() * 16 * 4 / 3;
            int engineCount = 0;
            for (EngineBlocks blocks : engines) {
                if (blocks != null) {
                    engineCount++;
                    residencies += blocks.size();
                    memory += blocks.memoryBytes();
                }
            }
            return new IndexStats(engineCount, residencies, head.size(), memory, counts.copy());
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Blocks one engine holds (any medium), for status and tests. */
    public int blocksOf(int engineId) {
        lock.readLock().lock();
        try {
            return engineId < engines.length && engines[engineId] != null ? engines[engineId].size() : 0;
        } finally {
            lock.readLock().unlock();
        }
    }
}
