package io.kvbroker.watch;

import io.kvbroker.index.HoldingChanges;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.proto.v1.EngineBatch;

/**
 * One applied batch or reset as Watch streams it, with its message built once for every watcher that sends it.
 */
final class FeedEntry {
    private final long brokerSequence;
    private final int engineId;
    private final long incarnation;
    private final long sequence;
    private final long fingerprint;
    private final long engineTimeMicros;
    private final ResolvedBatch batch;
    /** Built by the first watcher that sends it (a benign race: equal messages). */
    private volatile EngineBatch message;

    /**
     * @param brokerSequence the broker sequence it was applied under
     * @param sequence the engine's sequence; -1 for a reset
     * @param engineTimeMicros when the engine published it (0: unknown, as for batches read back from the journal)
     */
    FeedEntry(long brokerSequence, int engineId, long incarnation, long sequence, long fingerprint,
            long engineTimeMicros, ResolvedBatch batch) {
        this.brokerSequence = brokerSequence;
        this.engineId = engineId;
        this.incarnation = incarnation;
        this.sequence = sequence;
        this.fingerprint = fingerprint;
        this.engineTimeMicros = engineTimeMicros;
        this.batch = batch;
    }

    long brokerSequence() {
        return brokerSequence;
    }

    int engineId() {
        return engineId;
    }

    long incarnation() {
        return incarnation;
    }

    long sequence() {
        return sequence;
    }

    long fingerprint() {
        return fingerprint;
    }

    /** The entry's message, built by the first watcher that needs it. */
    EngineBatch toMessage() {
        EngineBatch built = message;
        if (built == null) {
            built = build();
            message = built;
        }
        return built;
    }

    private EngineBatch build() {
        int stored = 0;
        int removed = 0;
        int evicted = 0;
        for (ResolvedBatch.Change change : batch.changes()) {
            if (change instanceof ResolvedBatch.Store store) {
                stored += store.hashes().length;
            } else if (change instanceof ResolvedBatch.Remove remove) {
                removed += remove.hashes().length;
            } else if (change instanceof ResolvedBatch.Evict evict) {
                evicted += evict.hashes().length;
            }
        }
        HoldingChanges holdings = batch.holdings();
        EngineBatch.Builder out = EngineBatch.newBuilder().setEngineId(engineId).setBrokerSequence(brokerSequence)
                .setIncarnation(incarnation).setSequence(sequence).setFingerprint(fingerprint)
                .setEngineTimeMicros(engineTimeMicros).setCleared(holdings.cleared())
                .setStoredBlocks(stored).setRemovedBlocks(removed).setEvictedBlocks(evicted);
        for (int i = 0; i < holdings.size(); i++) {
            out.addKeys(holdings.key(i)).addSpans(holdings.span(i)).addMedia(holdings.media(i));
        }
        return out.build();
    }
}
