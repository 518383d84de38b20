package io.kvbroker.query;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex.Holder;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.EngineCounters;
import io.kvbroker.ingest.EngineState;
import io.kvbroker.ingest.EngineStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;
import java.util.function.LongSupplier;

/**
 * Answers the query API's calls from the index, the engine registry, ingest's streams and the pending hints, in
 * domain types only: the gRPC layer validates requests and converts to and from protobuf around it.
 *
 * <p>Design note: a Score reads every candidate engine's applied sequence before it queries the index, so each row
 * can say which sequence it reflects at least; the index's writer moves on concurrently and a row may reflect more.
 * The pending part of a Score costs nothing until some gateway sends a Hint.
 */
public final class IndexQueries {
    private final BlockIndex index;
    private final EngineRegistry registry;
    private final IntFunction<EngineStream> streams;
    private final PendingHints hints;
    private final LongSupplier wallClockMs;
    private final ThreadLocal<ContentKeys> keyComputers;

    /**
     * @param streams ingest's stream of an engine, or null when ingest has none (yet)
     * @param wallClockMs the clock ingest stamps {@link EngineStream#lastHeardMs()} with
     */
    public IndexQueries(BlockIndex index, EngineRegistry registry, IntFunction<EngineStream> streams,
            PendingHints hints, LongSupplier wallClockMs) {
        this.index = index;
        this.registry = registry;
        this.streams = streams;
        this.hints = hints;
        this.wallClockMs = wallClockMs;
        int granularity = index.granularity();
        this.keyComputers = ThreadLocal.withInitial(() -> new ContentKeys(granularity));
    }

    public int granularity() {
        return index.granularity();
    }

    /** Scores a prompt: the index's rows with each engine's state and sequence, and the pending hinted runs. */
    public ScoreAnswer score(ScoreQuery query) {
        if (!registry.knowsModel(query.model())) {
            // OK and empty would read as "nobody holds this prompt": a gateway's typo would go unseen.
            throw RequestException.notFound("model", "no engine serves " + quoted(query.model()) + "; served: "
                    + (registry.models().isEmpty() ? "none yet" : quoted(String.join(", ",
                    registry.models().stream().limit(10).toList()))
                    + (registry.models().size() > 10 ? " and " + (registry.models().size() - 10) + " more" : "")));
        }
        int bound = registry.idCount();
        long[] sequences = new long[bound];
        if (query.engineFilter() == null) {
            for (int id = 0; id < bound; id++) {
                sequences[id] = index.appliedSequence(id);
            }
        } else {
            Arrays.fill(sequences, -1);
            for (int id : query.engineFilter()) {
                if (id >= bound) {
                    throw RequestException.invalid("engine_ids", "no engine with id " + id);
                }
                sequences[id] = index.appliedSequence(id);
            }
        }
        List<PrefixScore> scores = index.score(query.model(), query.loraName(), query.tokens(), query.keys(),
                query.engineFilter(), query.topK(), query.minTokens());
        List<ScoreAnswer.Row> rows = new ArrayList<>(scores.size());
        for (PrefixScore score : scores) {
            int id = score.engineId();
            // An engine registered after the sequences were read has no sequence read before the query: -1.
            long sequence = id < bound ? sequences[id] : -1;
            EngineStream stream = streams.apply(id);
            rows.add(new ScoreAnswer.Row(score, stateOf(id, stream), truncated(id), sequence,
                    stream == null ? 0 : EngineReport.lagBatches(stream.lastHeardSequence(), sequence)));
        }
        int chunks = query.tokens() != null ? PrefixScorer.chunksToScore(query.tokens().length, granularity())
                : query.keys().length;
        return new ScoreAnswer(rows, hints.isEmpty() ? List.of() : pending(query, scores), chunks);
    }

    /** The hinted engines' pending runs over this prompt, each starting where the engine's cached run ends. */
    private List<ScoreAnswer.Pending> pending(ScoreQuery query, List<PrefixScore> scores) {
        int[] hinted = hints.engines();
        if (query.engineFilter() != null) {
            int[] filter = query.engineFilter().clone();
            Arrays.sort(filter);
            hinted = Arrays.stream(hinted).filter(id -> Arrays.binarySearch(filter, id) >= 0).toArray();
        }
        if (hinted.length == 0) {
            return List.of();
        }
        long[] keys = query.keys() != null ? query.keys() : promptKeys(query.model(), query.loraName(),
                query.tokens());
        int[] cachedRun = new int[registry.idCount() + 1];
        List<Integer> unscored = new ArrayList<>();
        for (int id : hinted) {
            PrefixScore row = scores.stream().filter(s -> s.engineId() == id).findFirst().orElse(null);
            if (row != null && id < cachedRun.length) {
                cachedRun[id] = row.totalBlocks();
            } else if (query.topK() > 0 || query.minTokens() > 0) {
                unscored.add(id);
            }
        }
        if (!unscored.isEmpty()) {
            // Cut by top_k or min_tokens, these engines may still hold a prefix: their own runs, without the cuts.
            int[] filter = unscored.stream().mapToInt(Integer::intValue).toArray();
            for (PrefixScore s : index.score(query.model(), query.loraName(), null, keys, filter, 0, 0)) {
                if (s.engineId() < cachedRun.length) {
                    cachedRun[s.engineId()] = s.totalBlocks();
                }
            }
        }
        List<ScoreAnswer.Pending> pending = new ArrayList<>();
        for (int id : hinted) {
            if (registry.entry(id).removed()) {
                // A removed engine will never confirm: its hints go with it.
                hints.forget(id);
                continue;
            }
            int run = hints.pendingRun(id, keys, id < cachedRun.length ? cachedRun[id] : 0);
            if (run > 0) {
                pending.add(new ScoreAnswer.Pending(id, run));
            }
        }
        return pending;
    }

    /** For each content key, its holders. */
    public List<List<Holder>> lookupKeys(long[] keys) {
        return index.lookupKeys(keys);
    }

    /** For each engine block hash, its holders. */
    public List<List<Holder>> lookupHashes(long[] hashes) {
        return index.lookupHashes(hashes);
    }

    /** The current engines by id, and with {@code includeRemoved} also every removed one since start-up. */
    public List<EngineReport> engines(boolean includeRemoved) {
        List<EngineReport> reports = new ArrayList<>();
        long now = wallClockMs.getAsLong();
        for (int id = 0; id < registry.idCount(); id++) {
            EngineRegistry.Entry entry = registry.entry(id);
            if (entry.removed() && !includeRemoved) {
                continue;
            }
            EngineStream stream = streams.apply(id);
            BlockIndex.EngineSummary summary = index.engineSummary(id);
            reports.add(new EngineReport(id, entry.spec(), entry.removed() ? EngineState.REMOVED : stateOf(id, stream),
                    truncated(id), summary, stream == null ? -1 : stream.lastHeardSequence(),
                    stream == null ? 0 : Math.max(0, now - stream.lastHeardMs()),
                    stream == null ? new EngineCounters() : stream.counters(),
                    stream != null && stream.historyPartial(), stream == null ? null : stream.mismatchedTopic()));
        }
        return reports;
    }

    /**
     * Records a routing decision: the prompt's chunks count as pending on the engine until it holds them or
     * {@code ttlMs} passes.
     *
     * @param keys the prompt's content keys, or null to compute them from {@code tokens}
     */
    public PendingHints.Recorded hint(int engineId, String model, String loraName, int[] tokens, long[] keys,
            long ttlMs) {
        if (engineId >= registry.idCount() || registry.entry(engineId).removed()) {
            throw RequestException.invalid("engine_id", "no engine with id " + engineId
                    + (engineId < registry.idCount() ? " (it was removed)" : ""));
        }
        String served = registry.entry(engineId).spec().model();
        if (!model.isEmpty() && !served.isEmpty() && !served.equals(model)) {
            throw RequestException.invalid("model", "engine " + engineId + " serves " + quoted(served) + ", not "
                    + quoted(model));
        }
        long[] hinted = keys != null ? keys : promptKeys(model, loraName, tokens);
        List<List<Holder>> holders = index.lookupKeys(hinted);
        boolean[] held = new boolean[hinted.length];
        for (int i = 0; i < hinted.length; i++) {
            held[i] = holders.get(i).stream().anyMatch(h -> h.engineId() == engineId);
        }
        return hints.record(engineId, hinted, held, ttlMs);
    }

    /** A name from a request or the registry, quoted and cut to a readable length. */
    private static String quoted(String name) {
        return "'" + (name.length() <= 200 ? name : name.substring(0, 200) + "...") + "'";
    }

    /** The content keys Score scores for a token prompt: its chunks but a last token's. */
    private long[] promptKeys(String model, String loraName, int[] tokens) {
        long[] all = keyComputers.get().promptKeys(model, loraName, tokens);
        return Arrays.copyOf(all, PrefixScorer.chunksToScore(tokens.length, granularity()));
    }

    /** Whether the index holds less of an engine than the engine does (its quota made the index evict blocks). */
    private boolean truncated(int engineId) {
        return index.truncated(engineId);
    }

    private static EngineState stateOf(int engineId, EngineStream stream) {
        return stream == null ? EngineState.CONNECTING : stream.state();
    }
}
