package io.kvbroker.journal;

import io.kvbroker.index.ResolvedBatch;

/**
 * One entry of the replay log: a batch an engine published, as the index resolved it, or a reset of the engine.
 *
 * @param engine the engine's stable name ({@code pod/rank}), so a record outlives the process's engine ids
 * @param incarnation the engine incarnation the batch belongs to
 * @param sequence the engine's own sequence; {@link #RESET} for a reset (the changes then clear every medium)
 * @param timeMs when the broker applied it, for retention by age
 * @param batch the changes
 */
public record LogRecord(String engine, long incarnation, long sequence, long timeMs, ResolvedBatch batch) {
    public static final long RESET = -1;

    public boolean reset() {
        return sequence == RESET;
    }
}
