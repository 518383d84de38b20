package io.kvbroker.watch;

import io.kvbroker.index.HoldingChanges;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.proto.v1.EngineBatch;

/**
 * One applied batch or reset as Watch streams it, with its message built once for every watcher that sends it.
 *
 * @param brokerSequence the broker sequence it was applied under
 * @param sequence the engine's sequence; -1 for a reset
 * @param engineTimeMicros when the engine published it (0: unknown, as for batches read back from the journal)
 */
record FeedEntry(long brokerSequence, int engineId, long incarnation, long sequence, long fingerprint,
        long engineTimeMicros, ResolvedBatch batch, Message message) {

    FeedEntry(long brokerSequence, int engineId, long incarnation, long sequence, long fingerprint,
            long engineTimeMicros, ResolvedBatch batch) {
        this(brokerSequence, engineId, incarnation, sequence, fingerprint, engineTimeMicros, batch, new Message());
    }

    /** The entry's message, built by the first watcher that needs it (a benign race: equal messages). */
    EngineBatch toMessage() {
        EngineBatch built = message.built;
        if (built == null) {
            built = build();
            message.built = built;
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

    /** Holder of the lazily built message (a record's fields are final). */
    static final class Message {
        volatile EngineBatch built;
    }
}
