package io.kvbroker.query;

import io.kvbroker.core.PrefixScore;
import io.kvbroker.ingest.EngineState;
import java.util.List;

/**
 * A Score's answer: the index's rows, each with the engine's state and the sequence it reflects, and the engines
 * the prompt's next chunks were hinted to.
 *
 * @param rows the engines holding a prefix, best first
 * @param pending engines with hinted chunks of the prompt they do not hold yet, by engine id
 * @param scoredChunks chunks of the prompt that were scored
 */
public record ScoreAnswer(List<Row> rows, List<Pending> pending, int scoredChunks) {

    /**
     * One engine's match.
     *
     * @param appliedSequence the engine's applied sequence read before the index was queried (-1: none)
     * @param lagBatches batches heard from the engine and not applied when the answer was computed
     */
    public record Row(PrefixScore score, EngineState state, boolean truncated, long appliedSequence,
            long lagBatches) {
    }

    /** Chunks hinted to an engine and not confirmed, right after its cached run. */
    public record Pending(int engineId, int blocks) {
    }
}
