package io.kvbroker.ingest;

import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;

/**
 * Receives each engine's exact history from ingest: batches in sequence order, exactly once, and the points where
 * what the engine held must be forgotten. Called on the ingest thread only; implementations must not block it.
 */
public interface IngestSink {

    /** Why an engine's state was cleared. */
    enum ResetReason {
        /** The engine restarted: its sequence went backwards. */
        RESTART_BY_SEQUENCE,
        /** The engine restarted while disconnected: a reconnect's replay did not match the last applied batch. */
        RESTART_BY_FINGERPRINT,
        /** Discovery saw the engine's container replaced (a new container ID), whatever its sequence showed. */
        RESTART_SIGNALLED,
        /** A gap the engine could no longer replay: what it did in between is unknown, so it starts again. */
        VOID,
        /** The engine was removed from the configuration or discovery. */
        REMOVED
    }

    /** Applies one batch: {@code sequence} is the engine's own, one more than the last applied in this incarnation. */
    void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch);

    /**
     * Applies one batch, as {@link #onBatch(int, long, long, KvEventBatch)}, with what a persisting sink keeps to
     * resume the engine after a restart: the payload's fingerprint and the engine's group kinds as of this batch.
     */
    default void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch, long fingerprint,
            GroupKinds kinds) {
        onBatch(engineId, incarnation, sequence, batch);
    }

    /** Everything the engine held is gone; {@code incarnation} is the one that continues (new after a restart). */
    void onReset(int engineId, long incarnation, ResetReason reason);

    /**
     * Batches {@code fromSequence..toSequence} (inclusive) were published but can no longer be had: the engine holds
     * blocks kvbroker never heard of. Reported on first contact when the engine's replay buffer moved on.
     */
    void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence);

    /**
     * Ingest finished a round of its loop (what was readable has been handled): a sink that groups its writes may
     * write them now. At least every tick, also when no message came.
     */
    default void onRoundEnd(long nowMs) {
    }

    /** A sink that drops everything (ingest without an index, as in tools). */
    IngestSink NONE = new IngestSink() {
        @Override
        public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        }

        @Override
        public void onReset(int engineId, long incarnation, ResetReason reason) {
        }

        @Override
        public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
        }
    };
}
