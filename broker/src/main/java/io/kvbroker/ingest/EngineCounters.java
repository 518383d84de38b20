package io.kvbroker.ingest;

import io.kvbroker.codec.MalformedMessageException;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * One engine's ingest counters: written by the ingest thread only, read by anyone.
 *
 * <p>Design note: with a single writer, an increment is a plain read and an ordered write (no compare-and-set),
 * which keeps counting off the hot path's costs while readers still see whole values.
 */
public final class EngineCounters {

    /** What is counted. */
    public enum Counter {
        BATCHES, BLOCK_EVENTS, BYTES, GAPS, REPLAYS_REQUESTED, REPLAY_TIMEOUTS, REPLAYED_BATCHES, DUPLICATES, VOIDS,
        RESTARTS_BY_SEQUENCE, RESTARTS_BY_FINGERPRINT, RESTARTS_SIGNALLED, UNKNOWN_HISTORY_BATCHES, SKIPPED_EVENTS,
        SKIPPED_FIELDS, PENDING_OVERFLOWS, STALE_REPLIES, DECODE_ERRORS, TOPIC_MISMATCHES, CONNECTIONS,
        /** Connections of the SUB or the replay DEALER dropped or lost (a frame over the size limit drops one). */
        DISCONNECTIONS,
        /** Connections ZeroMQ ended for a protocol error (a frame over ingest.maxMessageBytes), connected again. */
        PROTOCOL_DROPS
    }

    /** Latest values rather than counts, for lag: written with the same cheap ordered store as the counters. */
    public enum Mark {
        /** Wall-clock milliseconds when the engine was last heard from (live or replay), 0 before. */
        LAST_HEARD_MS,
        /** The engine's own timestamp (ms) of the last applied batch, 0 before. */
        LAST_APPLIED_BATCH_TS_MS
    }

    private static final int REASONS = MalformedMessageException.Reason.values().length;
    private final AtomicLongArray values = new AtomicLongArray(Counter.values().length + REASONS);

    private final AtomicLongArray marks = new AtomicLongArray(Mark.values().length);

    void mark(Mark mark, long value) {
        marks.lazySet(mark.ordinal(), value);
    }

    public long get(Mark mark) {
        return marks.get(mark.ordinal());
    }

    /** Adds a non-negative amount; a counter stops at Long.MAX_VALUE (unknown history after a wild jump). */
    void add(Counter counter, long amount) {
        int index = counter.ordinal();
        long sum = values.get(index) + amount;
        values.lazySet(index, sum < 0 ? Long.MAX_VALUE : sum);
    }

    void increment(Counter counter) {
        add(counter, 1);
    }

    void decodeError(MalformedMessageException.Reason reason) {
        increment(Counter.DECODE_ERRORS);
        int index = Counter.values().length + reason.ordinal();
        values.lazySet(index, values.get(index) + 1);
    }

    public long get(Counter counter) {
        return values.get(counter.ordinal());
    }

    public long decodeErrors(MalformedMessageException.Reason reason) {
        return values.get(Counter.values().length + reason.ordinal());
    }
}
