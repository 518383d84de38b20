package io.kvbroker.index;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.HolderTable;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.index.BlockIndex.EngineHoldings;
import io.kvbroker.index.BlockIndex.EngineSummary;
import io.kvbroker.index.BlockIndex.Holder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * Answers the index's queries (Score, Lookup, an engine's summary and holdings) on any thread without a lock: each
 * query reads optimistically, then reads again the engines whose writes the {@link WriteLog} says overlapped it, until
 * none did, so each engine's part of an answer is that engine as of one applied batch.
 *
 * <p>Design note: a read never makes the writer wait, and a read that a write overlapped costs another read of the
 * overlapped engines only (usually none or one), not of the whole index. Why the structures are safe to read while
 * the writer changes them is told once, in {@link BlockIndex}. Each query thread keeps its own key computer and scorer
 * ({@link Reader}), so a Score allocates little.
 */
final class OptimisticReads {
    /**
     * Reads this many times whole before reading every engine once and again only those that writes overlapped: one,
     * since at full ingest rate a second whole read is overlapped as surely as the first.
     */
    private static final int OPTIMISTIC_ATTEMPTS = 1;

    private final int granularity;
    private final HolderTable holders;
    private final WriteLog writes;
    /** The index's engine tables as last published (the writer replaces the array when it grows). */
    private final Supplier<EngineBlocks[]> engines;
    private final ThreadLocal<Reader> readers;

    OptimisticReads(int granularity, PrefixScorer.Weights weights, HolderTable holders, WriteLog writes,
            Supplier<EngineBlocks[]> engines) {
        this.granularity = granularity;
        this.holders = holders;
        this.writes = writes;
        this.engines = engines;
        this.readers = ThreadLocal.withInitial(() -> new Reader(new ContentKeys(granularity),
                new PrefixScorer(weights)));
    }

    /** {@link BlockIndex#score}. */
    List<PrefixScore> score(String model, String loraName, int[] tokens, long[] keys, int[] engineFilter, int topK,
            int minTokens) {
        Reader reader = readers.get();
        for (int attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
            long mark = writes.mark();
            List<PrefixScore> scores = tryScore(reader, model, loraName, tokens, keys, engineFilter, topK, minTokens);
            int[] overlapped = writes.overlapped(mark);
            if (scores != null && overlapped != null && overlapped.length == 0) {
                return scores;
            }
        }
        // Writes keep overlapping: score every engine once, then again only those a write overlapped, until none is.
        Map<Integer, PrefixScore> byEngine = new HashMap<>();
        int[] pending = readRepeatedly(engineFilter, filter -> {
            List<PrefixScore> scores = tryScore(reader, model, loraName, tokens, keys, filter, 0, minTokens);
            if (scores != null) {
                if (filter == null) {
                    // A pass over every engine replaces all before it (one a write overlapped too much to tell
                    // which engines it changed): an engine missing from it matched nothing.
                    byEngine.clear();
                } else {
                    for (int e : filter) {
                        byEngine.remove(e);
                    }
                }
                scores.forEach(score -> byEngine.put(score.engineId(), score));
            }
            return scores != null;
        });
        List<PrefixScore> merged = new ArrayList<>(byEngine.values());
        merged.sort(Comparator.comparingDouble(PrefixScore::score).reversed()
                .thenComparingInt(PrefixScore::engineId));
        return topK > 0 && merged.size() > topK ? merged.subList(0, topK) : merged;
    }

    /**
     * Runs {@code read} over {@code filter} (null: every engine), then again over the engines whose writes overlapped
     * the last run (within {@code filter}), until a run overlaps none of the engines it read. {@code read} returns
     * false when it met a structure mid-change (an engine added under it); it is then run again.
     */
    private int[] readRepeatedly(int[] filter, Predicate<int[]> read) {
        int[] scope = filter;
        while (true) {
            long mark = writes.mark();
            boolean complete = read.test(scope);
            int[] overlapped = writes.overlapped(mark);
            if (!complete || overlapped == null) {
                continue;
            }
            int[] again = overlapped(overlapped, scope, filter);
            if (again.length == 0) {
                return again;
            }
            scope = again;
        }
    }

    /** The engines of {@code overlapped} within {@code scope} (null: all) and within {@code filter}. */
    private static int[] overlapped(int[] overlapped, int[] scope, int[] filter) {
        return Arrays.stream(overlapped).distinct()
                .filter(e -> (scope == null || contains(scope, e)) && (filter == null || contains(filter, e)))
                .toArray();
    }

    private static boolean contains(int[] ids, int id) {
        for (int e : ids) {
            if (e == id) {
                return true;
            }
        }
        return false;
    }

    /** One scoring pass; null if it met a structure mid-change. */
    private List<PrefixScore> tryScore(Reader reader, String model, String loraName, int[] tokens, long[] keys,
            int[] engineFilter, int topK, int minTokens) {
        try {
            if (tokens != null) {
                return reader.scorer.score(reader.keys, reader.root(model, loraName), tokens,
                        PrefixScorer.chunksToScore(tokens.length, granularity), holders, engineFilter, topK,
                        minTokens);
            }
            return reader.scorer.score(keys, keys.length, granularity, holders, engineFilter, topK, minTokens);
        } catch (IndexOutOfBoundsException e) {
            // An engine added during the read is beyond the arrays sized at its start; that write overlapped.
            return null;
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
            if (!model.equals(rootModel) || !Objects.equals(lora, rootLora)) {
                root = keys.root(model, lora);
                rootModel = model;
                rootLora = lora;
            }
            return root;
        }
    }

    /** For each content key, the engines holding a block recorded under it, each as of one applied batch. */
    List<List<Holder>> lookupKeys(long[] keys) {
        return lookup(keys.length, (i, filter, found) -> holders.forEachHolder(keys[i], (engineId, span, media) -> {
            if (filter == null || contains(filter, engineId)) {
                found.add(new Holder(engineId, media));
            }
        }));
    }

    /** For each engine hash, the engines holding it (orphans included: engine hashes are engine-local). */
    List<List<Holder>> lookupHashes(long[] hashes) {
        return lookup(hashes.length, (i, filter, found) -> {
            for (EngineBlocks blocks : engines.get()) {
                if (blocks == null || (filter != null && !contains(filter, blocks.engineId))) {
                    continue;
                }
                int id = blocks.idOf(hashes[i]);
                if (id != EngineBlocks.NONE && blocks.indexed(id)) {
                    found.add(new Holder(blocks.engineId, blocks.media(id)));
                }
            }
        });
    }

    /** Finds the holders of the {@code i}-th looked-up item among the engines of {@code filter} (null: all). */
    @FunctionalInterface
    private interface ItemReader {
        void read(int i, int[] filter, List<Holder> found);
    }

    private List<List<Holder>> lookup(int items, ItemReader reader) {
        List<List<Holder>> result = new ArrayList<>(items);
        for (int i = 0; i < items; i++) {
            result.add(new ArrayList<>());
        }
        readRepeatedly(null, filter -> {
            try {
                for (int i = 0; i < items; i++) {
                    List<Holder> found = result.get(i);
                    found.removeIf(h -> filter == null || contains(filter, h.engineId()));
                    reader.read(i, filter, found);
                }
                return true;
            } catch (IndexOutOfBoundsException e) {
                // A table resized under the read: an overlapped write, read again.
                return false;
            }
        });
        for (List<Holder> found : result) {
            found.sort(Comparator.comparingInt(Holder::engineId));
        }
        return result;
    }

    /** {@link BlockIndex#engineSummary}. */
    EngineSummary engineSummary(int engineId) {
        EngineSummary[] summary = new EngineSummary[1];
        readRepeatedly(new int[] {engineId}, filter -> {
            EngineBlocks b = engineBlocks(engineId);
            summary[0] = b == null ? EngineSummary.EMPTY : new EngineSummary(b.appliedSequence, b.incarnation,
                    b.indexedCount(), b.blocksOn(Media.GPU), b.blocksOn(Media.CPU), b.blocksOn(Media.STORAGE),
                    b.blocksOn(Media.OTHER), b.evictedCount(), b.evictions);
            return true;
        });
        return summary[0];
    }

    /** {@link BlockIndex#holdings}. */
    EngineHoldings holdings(int engineId, boolean withHoldings) {
        EngineHoldings[] read = new EngineHoldings[1];
        readRepeatedly(new int[] {engineId}, filter -> {
            try {
                read[0] = readHoldings(engineBlocks(engineId), withHoldings);
                return true;
            } catch (RuntimeException e) {
                // Arrays swapped or grown under the read: the write that did it overlapped, so it is read again.
                return false;
            }
        });
        return read[0];
    }

    private static EngineHoldings readHoldings(EngineBlocks b, boolean withHoldings) {
        if (b == null) {
            return EngineHoldings.NONE;
        }
        long incarnation = b.incarnation;
        long sequence = b.appliedSequence;
        long fingerprint = b.fingerprint;
        long brokerSequence = b.brokerSequence;
        if (!withHoldings) {
            return new EngineHoldings(incarnation, sequence, fingerprint, brokerSequence, new long[0], new int[0]);
        }
        int bound = b.idBound();
        long[] keys = new long[Math.min(bound, b.indexedCount() + 16)];
        int[] values = new int[keys.length];
        int n = 0;
        for (int id = 0; id < bound; id++) {
            if (b.used(id) && b.linked(id)) {
                if (n == keys.length) {
                    keys = Arrays.copyOf(keys, n * 2 + 16);
                    values = Arrays.copyOf(values, keys.length);
                }
                keys[n] = b.key(id);
                values[n++] = HoldingChanges.value(b.span(id), b.media(id));
            }
        }
        return new EngineHoldings(incarnation, sequence, fingerprint, brokerSequence, Arrays.copyOf(keys, n),
                Arrays.copyOf(values, n));
    }

    private EngineBlocks engineBlocks(int engineId) {
        EngineBlocks[] all = engines.get();
        return engineId < all.length ? all[engineId] : null;
    }
}
