package io.kvbroker.query;

import io.kvbroker.engine.EngineSpec;
import io.kvbroker.index.BlockIndex.EngineSummary;
import io.kvbroker.ingest.EngineCounters;
import io.kvbroker.ingest.EngineState;

/**
 * One engine as ListEngines reports it: identity, stream state, freshness, what the index holds of it, counters.
 *
 * @param engineId the dense engine id
 * @param spec pod, rank, model and endpoints
 * @param state the stream's state ({@link EngineState#REMOVED} once removed)
 * @param truncated whether the index dropped some of the engine's blocks to stay within its budget
 * @param summary the index's part: applied sequence, incarnation, blocks by medium
 * @param lastHeardSequence the latest sequence heard from the engine, -1 if none
 * @param msSinceLastHeard milliseconds since the engine was last heard (or since ingest started listening to it)
 * @param counters the stream's counters (all zero before ingest has a stream for the engine)
 * @param historyPartial whether the index may hold less of the engine's current incarnation than it caches (batches
 *     published where the broker could not hear them, that nothing could replay)
 * @param topicSeen the topic of the engine's latest messages when not the configured one, else null
 */
public record EngineReport(int engineId, EngineSpec spec, EngineState state, boolean truncated,
        EngineSummary summary, long lastHeardSequence, long msSinceLastHeard, EngineCounters counters,
        boolean historyPartial, String topicSeen) {

    /** Batches heard but not applied yet: the answer's lag behind what the engine published. */
    public long lagBatches() {
        return lagBatches(lastHeardSequence, summary.appliedSequence());
    }

    static long lagBatches(long lastHeardSequence, long appliedSequence) {
        return Math.max(0, lastHeardSequence - appliedSequence);
    }
}
