package io.kvbroker.journal;

import io.kvbroker.index.ResolvedBatch;

/**
 * One entry of the replay log: a batch an engine published, as the index resolved it, or a reset of the engine.
 *
 * @param engine the engine's stable name ({@code pod/rank}), so a record outlives the process's engine ids
 * @param incarnation the engine incarnation the batch belongs to
 * @param sequence the engine's own sequence; {@link #RESET} for a reset (the changes then clear every medium)
 * @param timeMs when the broker applied it, for retention by age
 * @param batch the changes, with the holder changes Watch streams
 * @param fingerprint XXH64 of the engine's payload (0 for a reset): with the sequence, what names the batch on any
 *     replica
 */
public record LogRecord(String engine, long incarnation, long sequence, long timeMs, ResolvedBatch batch,
        long fingerprint) {
    public static final long RESET = -1;

    public LogRecord(String engine, long incarnation, long sequence, long timeMs, ResolvedBatch batch) {
        this(engine, incarnation, sequence, timeMs, batch, 0);
    }

    public boolean reset() {
        return sequence == RESET;
    }

    /** The record as the log stores it (for tools and benchmarks; the journal encodes on its own). */
    public byte[] encode() {
        return RecordCodec.encode(this);
    }
}
