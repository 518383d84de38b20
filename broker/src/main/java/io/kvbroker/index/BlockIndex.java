package io.kvbroker.index;

import io.kvbroker.client.ContentKeys;
import io.kvbroker.client.HolderTable;
import io.kvbroker.client.Media;
import io.kvbroker.client.PrefixScore;
import io.kvbroker.client.PrefixScorer;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import io.kvbroker.ingest.IngestSink;
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
 * engine's own hash. Each engine's blocks are one open-addressing table ({@link EngineBlocks}); the holders of each
 * key live in client-stub's {@link HolderTable}, laid out for Score (engine sets as bitsets where many engines share
 * a key), and nothing is allocated per block. Only
 * full-attention groups enter: stores and removals of other (or unknown) groups are counted and skipped, so a
 * sliding-window eviction can never delete the full-attention entry of the same hash. Repeated stores are
 * idempotent, and a removal removes its hash from that medium however many stores preceded it (vLLM's "full" report
 * mode re-announces blocks that are not new copies; counting copies would leave stale entries, while this rule can
 * only drop a block early when two physical copies exist and one is evicted).
 *
 * <p>Concurrency, interim: one writer (the ingest thread) takes the write lock per batch; queries take the read lock
 * (Score computes its keys under it, as far as its walk goes). Both hold it for microseconds. A read path that never
 * blocks the writer is the index issue's next step (docs/index.md).
 */
public final class BlockIndex implements IngestSink {
    private final IntFunction<String> modelOf;
    private final int granularity;
    private final ContentKeys writerKeys;
    private final Map<String, Long> roots = new HashMap<>();
    private final HolderTable holders = new HolderTable();
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final ThreadLocal<Reader> readers;
    private volatile EngineBlocks[] engines = new EngineBlocks[16];
    private final IndexStats.Counts counts = new IndexStats.Counts();

    /**
     * @param modelOf the model an engine serves, by engine id
     * @param granularity tokens per chunk (vLLM's hash block size, 16, by default)
     */
    public BlockIndex(IntFunction<String> modelOf, int granularity, PrefixScorer.Weights weights) {
        this.modelOf = modelOf;
        this.granularity = granularity;
        this.writerKeys = new ContentKeys(granularity);
        this.readers = ThreadLocal.withInitial(() -> new Reader(new ContentKeys(granularity),
                new PrefixScorer(weights)));
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
            blocks.incarnation = incarnation;
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
            blocks.appliedSequence = sequence;
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
                engines[engineId].appliedSequence = -1;
                engines[engineId].incarnation = incarnation;
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
                addMedium(blocks, slot, medium);
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
                parentKey = blocks.key(parentSlot);
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
            addMedium(blocks, slot, medium);
            counts.storedBlocks++;
            if (keyable && chainKnown) {
                List<Object> extra = stored.extraKeys() == null || b >= stored.extraKeys().size() ? null
                        : ContentKeys.normalizeExtra(stored.extraKeys().get(b), stored.loraName());
                long key = writerKeys.block(parentKey, tokens, b * blockSize, span, extra);
                if (!blocks.keyed(slot)) {
                    if (!fresh) {
                        counts.rerootedBlocks++;
                    }
                    blocks.setKey(slot, key);
                    blocks.setSpan(slot, span);
                    blocks.addFlags(slot, EngineBlocks.KEYED);
                    if (holders.holds(key, blocks.engineId)) {
                        // A second block of this engine with the same content: kept for removals, not scored twice.
                        counts.duplicateKeys++;
                    } else {
                        holders.add(key, blocks.engineId, span, blocks.media(slot));
                        blocks.addFlags(slot, EngineBlocks.LINKED);
                    }
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
        for (long hash : blocks.liveHashes()) {
            drop(blocks, blocks.slotOf(hash), media);
        }
        counts.clears++;
    }

    private void drop(EngineBlocks blocks, int slot, int media) {
        int before = blocks.media(slot);
        int after = before & ~media;
        if (after == before) {
            return;
        }
        blocks.setMedia(slot, after);
        if (after == 0) {
            if (blocks.linked(slot)) {
                holders.remove(blocks.key(slot), blocks.engineId);
            }
            blocks.free(slot);
        } else if (blocks.linked(slot)) {
            holders.update(blocks.key(slot), blocks.engineId, blocks.span(slot), after);
        }
    }

    private void addMedium(EngineBlocks blocks, int slot, int medium) {
        int before = blocks.media(slot);
        int after = before | medium;
        if (after != before) {
            blocks.setMedia(slot, after);
            if (blocks.linked(slot)) {
                holders.update(blocks.key(slot), blocks.engineId, blocks.span(slot), after);
            }
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

    // ---- reads (any thread) ----

    /**
     * Scores a prompt given as token ids (capped at {@code floor((n - 1) / g)} chunks, as the engine recomputes the
     * last token) or as content keys (all scored).
     */
    public List<PrefixScore> score(String model, String loraName, int[] tokens, long[] keys, int[] engineFilter,
            int topK, int minTokens) {
        Reader reader = readers.get();
        lock.readLock().lock();
        try {
            if (tokens != null) {
                return reader.scorer.score(reader.keys, reader.root(model, loraName), tokens,
                        PrefixScorer.chunksToScore(tokens.length, granularity), holders, engineFilter, topK,
                        minTokens);
            }
            return reader.scorer.score(keys, keys.length, granularity, holders, engineFilter, topK, minTokens);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** A query thread's reusable state: key computer, scorer, and the last root it computed. */
    private static final class Reader {
        final ContentKeys keys;
        final PrefixScorer scorer;
        String rootModel;
        String rootLora;
        long root;

        Reader(ContentKeys keys, PrefixScorer scorer) {
            this.keys = keys;
            this.scorer = scorer;
        }

        long root(String model, String lora) {
            if (!model.equals(rootModel) || !java.util.Objects.equals(lora, rootLora)) {
                root = keys.root(model, lora);
                rootModel = model;
                rootLora = lora;
            }
            return root;
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
                List<Holder> found = new ArrayList<>();
                holders.forEachHolder(key, (engineId, span, media) -> found.add(new Holder(engineId, media)));
                result.add(found);
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
                        holders.add(new Holder(blocks.engineId, blocks.media(slot)));
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
            long memory = holders.memoryBytes();
            int engineCount = 0;
            for (EngineBlocks blocks : engines) {
                if (blocks != null) {
                    engineCount++;
                    residencies += blocks.size();
                    memory += blocks.memoryBytes();
                }
            }
            return new IndexStats(engineCount, residencies, holders.keys(), memory, counts.copy());
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * One engine's part of the index.
     *
     * @param appliedSequence the last sequence applied (-1: none since the engine's state was created or reset)
     * @param incarnation the incarnation that sequence belongs to
     * @param blocks blocks held on any medium
     * @param gpuBlocks blocks held on GPU (a block on two media counts in both)
     * @param cpuBlocks blocks held on CPU
     * @param storageBlocks blocks held on storage
     * @param otherBlocks blocks held on a tier this release does not know
     */
    public record EngineSummary(long appliedSequence, long incarnation, long blocks, long gpuBlocks, long cpuBlocks,
            long storageBlocks, long otherBlocks) {
        static final EngineSummary EMPTY = new EngineSummary(-1, 0, 0, 0, 0, 0, 0);
    }

    /** One engine's summary, or an empty one if the index has no state for it. */
    public EngineSummary engineSummary(int engineId) {
        lock.readLock().lock();
        try {
            EngineBlocks b = engineId < engines.length ? engines[engineId] : null;
            if (b == null) {
                return EngineSummary.EMPTY;
            }
            return new EngineSummary(b.appliedSequence, b.incarnation, b.size(), b.blocksOn(Media.GPU),
                    b.blocksOn(Media.CPU), b.blocksOn(Media.STORAGE), b.blocksOn(Media.OTHER));
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * The last applied sequence of an engine (-1 if none). Read it before a query: the query's answer for that engine
     * reflects the engine at or after this sequence.
     */
    public long appliedSequence(int engineId) {
        EngineBlocks[] all = engines;
        EngineBlocks b = engineId < all.length ? all[engineId] : null;
        return b == null ? -1 : b.appliedSequence;
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
