package io.kvbroker.index;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.HolderTable;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The global block index: for every content key, the engines holding a block recorded under it, with span and
 * media; fed by ingest through {@code apply.BatchApplier}, read by Score and Lookup. This class is the package's face:
 * it runs each write (one batch, reset or restore of one engine) and hands the parts of the work to the classes
 * below.
 *
 * <p>Design note: keys come from {@link ContentKeys} (the same code gateways run), so queries never depend on an
 * engine's own hash. Each engine's blocks are one open-addressing table ({@link EngineBlocks}); the holders of each
 * key live in client-stub's {@link HolderTable}, laid out for Score (engine sets as bitsets where many engines share
 * a key), and nothing is allocated per block. Only full-attention groups enter: stores and removals of other (or
 * unknown) groups are counted and skipped, so a sliding-window eviction can never delete the full-attention entry of
 * the same hash. Repeated stores are idempotent, and a removal removes its hash from that medium however many stores
 * preceded it (vLLM's "full" report mode re-announces blocks that are not new copies; counting copies would leave
 * stale entries, while this rule can only drop a block early when two physical copies exist and one is evicted).
 *
 * <p>The parts: {@link ChainStores} applies stores (keys, orphans, re-rooting, offload stores); {@link ClockEviction}
 * keeps each engine within its quota; {@link HolderLinks} makes every change to the holder table and notes it for the
 * journal and Watch; {@link EngineCheckpoints} turns an engine's table into bytes and back; {@link OptimisticReads}
 * answers the queries. Removals, clears and resets stay here, beside the batch loop.
 *
 * <p>Threads, for the whole package (the one place this is told):
 * <ul>
 *   <li>One writer changes the index: the ingest thread, or the journal's recovery before ingest starts. It runs the
 *       batch loop, resets, {@link #checkpoint} and {@link #restore} here, and through them {@link ChainStores},
 *       {@link ClockEviction}, {@link HolderLinks}, {@link EngineCheckpoints} and every {@link EngineBlocks} change;
 *       none of these takes a lock or is safe on another thread. Each write is bracketed in the {@link WriteLog}.
 *   <li>Queries run on any thread, through {@link OptimisticReads}: they take no lock and never make the writer wait.
 *       The structures they share with the writer never tear or move an entry the writer is not changing (the table
 *       of engines is replaced whole when it grows and published through a volatile field), and the {@link WriteLog}
 *       tells a query which engines' writes overlapped it; every engine is then read once more and only the
 *       overlapped ones again until no write overlaps them. So each engine's part of an answer is that engine as of
 *       one applied batch.
 *   <li>{@link #stats}, {@link #appliedSequence}, {@link #truncated} and {@link #blocksOf} read fields the writer
 *       changes without that check: status figures, each field one write.
 * </ul>
 */
public final class BlockIndex {
    private final IntFunction<String> modelOf;
    private final int granularity;
    private final HolderTable holders = new HolderTable();
    private final WriteLog writes = new WriteLog();
    private volatile EngineBlocks[] engines = new EngineBlocks[16];
    private final IndexStats.Counts counts = new IndexStats.Counts();
    private final IndexBudget budget;
    private final ClockEviction eviction;
    private final OptimisticReads reads;
    private final EngineCheckpoints checkpoints;
    private final HolderLinks links;
    private final ChainStores stores;

    /**
     * @param modelOf the model an engine serves, by engine id
     * @param granularity tokens per chunk (vLLM's hash block size, 16, by default)
     */
    public BlockIndex(IntFunction<String> modelOf, int granularity, PrefixScorer.Weights weights) {
        this(modelOf, granularity, weights, IndexBudget.NONE);
    }

    /**
     * @param budget each engine's quota of indexed blocks
     */
    public BlockIndex(IntFunction<String> modelOf, int granularity, PrefixScorer.Weights weights,
            IndexBudget budget) {
        this.budget = budget;
        this.modelOf = modelOf;
        this.granularity = granularity;
        this.links = new HolderLinks(holders, counts);
        this.eviction = new ClockEviction(budget, counts, links);
        this.stores = new ChainStores(granularity, counts, links, eviction);
        this.reads = new OptimisticReads(granularity, weights, holders, writes, () -> engines);
        this.checkpoints = new EngineCheckpoints(modelOf);
    }

    /** Each engine's quota of indexed blocks ({@link IndexBudget#NONE}: no budget). */
    public IndexBudget budget() {
        return budget;
    }

    public int granularity() {
        return granularity;
    }

    // ---- writes (the ingest thread) ----

    /** Applies one batch: {@code sequence} is the engine's own, one more than the last applied in this incarnation. */
    public void apply(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        apply(engineId, incarnation, sequence, batch, false);
    }

    /**
     * Applies one batch, as {@link #apply(int, long, long, KvEventBatch)}, and returns it resolved (for the journal)
     * when {@code resolve} is set.
     */
    public ResolvedBatch apply(int engineId, long incarnation, long sequence, KvEventBatch batch, boolean resolve) {
        return apply(engineId, incarnation, sequence, batch, resolve, 0, 0);
    }

    /**
     * Applies one batch and returns it resolved, with its holder changes, noting the payload's fingerprint and the
     * broker sequence it is applied under as the engine's position (what {@link #holdings} reports).
     */
    public ResolvedBatch apply(int engineId, long incarnation, long sequence, KvEventBatch batch, long fingerprint,
            long brokerSequence) {
        return apply(engineId, incarnation, sequence, batch, true, fingerprint, brokerSequence);
    }

    private ResolvedBatch apply(int engineId, long incarnation, long sequence, KvEventBatch batch, boolean resolve,
            long fingerprint, long brokerSequence) {
        List<ResolvedBatch.Change> changes = resolve ? new ArrayList<>(batch.events().size() + 1) : null;
        HoldingChanges holdings = resolve ? new HoldingChanges() : HoldingChanges.NONE;
        links.noteInto(resolve ? holdings : null);
        writes.begin(engineId);
        try {
            EngineBlocks blocks = engine(engineId);
            for (KvEvent event : batch.events()) {
                if (event instanceof BlockStored stored) {
                    ResolvedBatch.Store store = stores.store(blocks, stored, changes != null);
                    if (store != null) {
                        record(changes, store);
                    }
                } else if (event instanceof BlockRemoved removed) {
                    if (!removed.kind().reusablePrefix()) {
                        counts.skippedOtherGroups += removed.blockHashes().length;
                        continue;
                    }
                    ResolvedBatch.Remove remove = new ResolvedBatch.Remove(removed.blockHashes(),
                            bit(removed.medium()));
                    remove(blocks, remove);
                    record(changes, remove);
                } else if (event instanceof AllBlocksCleared cleared) {
                    int media = cleared.medium() == Medium.UNSPECIFIED ? Media.ALL : bit(cleared.medium());
                    clear(blocks, media);
                    record(changes, new ResolvedBatch.Clear(media));
                    // A full clear starts the engine's table afresh.
                    blocks = engine(engineId);
                }
            }
            finish(blocks, incarnation, sequence, changes);
            blocks.fingerprint = fingerprint;
            blocks.brokerSequence = brokerSequence;
        } finally {
            links.noteInto(null);
            writes.end();
        }
        return resolve ? new ResolvedBatch(changes, holdings) : null;
    }

    /**
     * Replays a batch the journal logged: the same changes through the same code, keys taken instead of computed,
     * so the engine ends as it did when the batch was first applied.
     */
    public void applyResolved(int engineId, long incarnation, long sequence, ResolvedBatch batch) {
        applyResolved(engineId, incarnation, sequence, batch, 0, 0);
    }

    /** Replays a logged batch, as above, restoring the engine's position too (see {@link #apply}). */
    public void applyResolved(int engineId, long incarnation, long sequence, ResolvedBatch batch, long fingerprint,
            long brokerSequence) {
        writes.begin(engineId);
        try {
            EngineBlocks blocks = engine(engineId);
            for (ResolvedBatch.Change change : batch.changes()) {
                if (change instanceof ResolvedBatch.Store store) {
                    stores.replay(blocks, store);
                } else if (change instanceof ResolvedBatch.Remove remove) {
                    remove(blocks, remove);
                } else if (change instanceof ResolvedBatch.Clear clear) {
                    clear(blocks, clear.media());
                    blocks = engine(engineId);
                }
            }
            finish(blocks, incarnation, sequence, null);
            blocks.fingerprint = fingerprint;
            blocks.brokerSequence = brokerSequence;
        } finally {
            writes.end();
        }
    }

    private void finish(EngineBlocks blocks, long incarnation, long sequence, List<ResolvedBatch.Change> changes) {
        eviction.afterBatch(blocks, changes);
        blocks.incarnation = incarnation;
        blocks.appliedSequence = sequence;
    }

    private static void record(List<ResolvedBatch.Change> changes, ResolvedBatch.Change change) {
        if (changes != null) {
            changes.add(change);
        }
    }

    /** Forgets everything an engine held; {@code incarnation} is the one that continues (new after a restart). */
    public void reset(int engineId, long incarnation) {
        reset(engineId, incarnation, -1);
    }

    /**
     * Forgets everything an engine held, as {@link #reset(int, long)}, under {@code brokerSequence} (-1: the engine's
     * position keeps its broker sequence).
     */
    public void reset(int engineId, long incarnation, long brokerSequence) {
        reset(engineId, incarnation, brokerSequence, false);
    }

    /** Forgets an engine that left the cluster, and its position. */
    public void remove(int engineId) {
        reset(engineId, 0, -1, true);
    }

    private void reset(int engineId, long incarnation, long brokerSequence, boolean removed) {
        writes.begin(engineId);
        try {
            if (engineId < engines.length && engines[engineId] != null) {
                reset(engines[engineId]);
                counts.clears++;
                engines[engineId].appliedSequence = -1;
                if (!removed) {
                    engines[engineId].incarnation = incarnation;
                }
                engines[engineId].fingerprint = 0;
                if (brokerSequence >= 0) {
                    engines[engineId].brokerSequence = brokerSequence;
                }
                if (removed) {
                    engines[engineId] = null;
                }
            }
        } finally {
            writes.end();
        }
    }

    private void remove(EngineBlocks blocks, ResolvedBatch.Remove removed) {
        for (long hash : removed.hashes()) {
            int id = blocks.idOf(hash);
            if (id == EngineBlocks.NONE || blocks.media(id) == 0) {
                counts.unknownRemovals++;
                continue;
            }
            drop(blocks, id, removed.medium());
            counts.removedBlocks++;
        }
    }

    private void clear(EngineBlocks blocks, int media) {
        if (media == Media.ALL) {
            reset(blocks);
        } else {
            for (int id : blocks.usedIds()) {
                if (blocks.used(id)) {
                    drop(blocks, id, media);
                }
            }
        }
        counts.clears++;
    }

    /** Forgets every block of an engine at once: its holders go, and its table starts empty. */
    private void reset(EngineBlocks blocks) {
        links.unlinkAll(blocks);
        EngineBlocks fresh = new EngineBlocks(blocks.engineId, blocks.model);
        fresh.appliedSequence = blocks.appliedSequence;
        fresh.incarnation = blocks.incarnation;
        fresh.fingerprint = blocks.fingerprint;
        fresh.brokerSequence = blocks.brokerSequence;
        engines[blocks.engineId] = fresh;
    }

    private void drop(EngineBlocks blocks, int id, int media) {
        int before = blocks.media(id);
        int after = before & ~media;
        if (after == before) {
            return;
        }
        blocks.setMedia(id, after);
        if (after == 0) {
            links.unlink(blocks, id);
            // What stays (a ghost, while children name it) is structure only: a later store of its hash starts it
            // over as an orphan or a re-rooted block, as if it had gone.
            blocks.clearFlags(id, EngineBlocks.KEYED);
            blocks.release(id);
        } else {
            links.mediaChanged(blocks, id);
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
     * last token) or as content keys (all scored). Each engine's part reflects the engine as of one applied batch,
     * at or after the {@link #appliedSequence} read before the call.
     */
    public List<PrefixScore> score(String model, String loraName, int[] tokens, long[] keys, int[] engineFilter,
            int topK, int minTokens) {
        return reads.score(model, loraName, tokens, keys, engineFilter, topK, minTokens);
    }

    /** One engine holding a looked-up block. */
    public record Holder(int engineId, int media) {
    }

    /** For each content key, the engines holding a block recorded under it, each as of one applied batch. */
    public List<List<Holder>> lookupKeys(long[] keys) {
        return reads.lookupKeys(keys);
    }

    /** For each engine hash, the engines holding it (orphans included: engine hashes are engine-local). */
    public List<List<Holder>> lookupHashes(long[] hashes) {
        return reads.lookupHashes(hashes);
    }

    /** Totals and counters; while batches are applied, the sums may mix engines read a batch apart. */
    public IndexStats stats() {
        long residencies = 0;
        long memory = holders.memoryBytes();
        int engineCount = 0;
        for (EngineBlocks blocks : engines) {
            if (blocks != null) {
                engineCount++;
                residencies += blocks.indexedCount();
                memory += blocks.memoryBytes();
            }
        }
        return new IndexStats(engineCount, residencies, holders.keys(), memory, counts.copy());
    }

    /**
     * One engine's part of the index.
     *
     * @param appliedSequence the last sequence applied (-1: none since the engine's state was created or reset)
     * @param incarnation the incarnation that sequence belongs to
     * @param blocks blocks indexed (held on some medium, not evicted)
     * @param gpuBlocks blocks held on GPU, evicted ones included (a block on two media counts in both)
     * @param cpuBlocks blocks held on CPU
     * @param storageBlocks blocks held on storage
     * @param otherBlocks blocks held on a tier this release does not know
     * @param evictedBlocks blocks the engine holds that the index dropped for its quota (their keys kept)
     * @param evictions blocks evicted since the engine's state was created or last cleared
     */
    public record EngineSummary(long appliedSequence, long incarnation, long blocks, long gpuBlocks, long cpuBlocks,
            long storageBlocks, long otherBlocks, long evictedBlocks, long evictions) {
        static final EngineSummary EMPTY = new EngineSummary(-1, 0, 0, 0, 0, 0, 0, 0, 0);

        /** The index holds less of this engine than the engine does: Score may miss blocks that are cached. */
        public boolean truncated() {
            return evictions > 0;
        }
    }

    /** One engine's summary, or an empty one if the index has no state for it. */
    public EngineSummary engineSummary(int engineId) {
        return reads.engineSummary(engineId);
    }

    /**
     * An engine's position and, if asked, its holdings (what Score reads of it), exactly as of one applied batch.
     *
     * @param incarnation the incarnation of the engine's last applied batch or reset
     * @param sequence that batch's sequence, -1 after a reset or before any batch
     * @param fingerprint that batch's payload fingerprint, 0 if none
     * @param brokerSequence the broker sequence that batch or reset was applied under
     * @param keys holdings: content key
     * @param values holdings: span and media packed as {@link HoldingChanges#value}
     */
    public record EngineHoldings(long incarnation, long sequence, long fingerprint, long brokerSequence, long[] keys,
            int[] values) {
        static final EngineHoldings NONE = new EngineHoldings(0, -1, 0, 0, new long[0], new int[0]);
    }

    /**
     * One engine's {@link EngineHoldings} (with an empty holding list unless {@code withHoldings}), read without a
     * lock and again while a write to the engine overlapped the read; {@link EngineHoldings#NONE}'s position when the
     * index has no state for it.
     */
    public EngineHoldings holdings(int engineId, boolean withHoldings) {
        return reads.holdings(engineId, withHoldings);
    }

    /**
     * The last applied sequence of an engine (-1 if none). Read it before a query: the query's answer for that engine
     * reflects the engine at or after this sequence.
     */
    public long appliedSequence(int engineId) {
        EngineBlocks b = engineBlocks(engineId);
        return b == null ? -1 : b.appliedSequence;
    }

    // ---- checkpoints (the writer's thread) ----

    /** One engine's part of the index as bytes, or null if the index has no state for it. */
    public byte[] checkpoint(int engineId) {
        return EngineCheckpoints.encode(engineBlocks(engineId));
    }

    /**
     * Replaces an engine's part of the index with a {@link #checkpoint}'s.
     *
     * @throws IllegalArgumentException if the bytes are not a checkpoint this release can read
     */
    public void restore(int engineId, byte[] checkpoint) {
        EngineBlocks restored = checkpoints.decode(engineId, checkpoint);
        writes.begin(engineId);
        try {
            EngineBlocks current = engineBlocks(engineId);
            if (current != null) {
                reset(current);
            }
            engine(engineId);
            engines[engineId] = restored;
            links.linkRestored(restored);
        } finally {
            writes.end();
        }
    }

    /** An engine's table: for the writer, for tests of the index's invariants, and for validated reads. */
    EngineBlocks engineBlocks(int engineId) {
        EngineBlocks[] all = engines;
        return engineId < all.length ? all[engineId] : null;
    }

    /** Whether the engine's quota made the index evict some of its blocks since its last clear (cheap, per row). */
    public boolean truncated(int engineId) {
        EngineBlocks b = engineBlocks(engineId);
        return b != null && b.evictions > 0;
    }

    /** Blocks one engine has indexed (on any medium), for status and tests. */
    public int blocksOf(int engineId) {
        EngineBlocks b = engineBlocks(engineId);
        return b == null ? 0 : b.indexedCount();
    }
}
