package io.kvbroker.watch;

import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.ingest.IngestSink;

/**
 * Applies each batch to the index and publishes it to the {@link ChangeFeed}, for a broker without a journal (with
 * one, the journaling sink does both under the log's sequence numbers).
 */
public final class FeedingSink implements IngestSink {
    private final BlockIndex index;
    private final ChangeFeed feed;

    public FeedingSink(BlockIndex index, ChangeFeed feed) {
        this.index = index;
        this.feed = feed;
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        onBatch(engineId, incarnation, sequence, batch, 0, null);
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch, long fingerprint,
            GroupKinds kinds) {
        long brokerSequence = feed.next();
        ResolvedBatch resolved = index.apply(engineId, incarnation, sequence, batch, fingerprint, brokerSequence);
        feed.publish(brokerSequence, engineId, incarnation, sequence, fingerprint, (long) (batch.timestamp() * 1e6),
                resolved);
    }

    @Override
    public void onReset(int engineId, long incarnation, ResetReason reason) {
        if (reason == ResetReason.REMOVED) {
            index.onReset(engineId, incarnation, reason);
            feed.engineRemoved();
            return;
        }
        long brokerSequence = feed.next();
        index.reset(engineId, incarnation, reason, brokerSequence);
        feed.publish(brokerSequence, engineId, incarnation, -1, 0, 0, ResolvedBatch.reset());
    }

    @Override
    public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
        index.onUnknownHistory(engineId, incarnation, fromSequence, toSequence);
    }

    @Override
    public void onRoundEnd(long nowMs) {
        feed.wake();
    }
}
