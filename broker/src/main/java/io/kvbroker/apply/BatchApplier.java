package io.kvbroker.apply;

import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.ingest.IngestSink;
import io.kvbroker.watch.ChangeFeed;

/**
 * Applies each batch and reset ingest hands over, in one step per batch on the ingest thread: to the index, then to
 * the log (when there is one), then to the change feed (when there is one), all under one broker sequence.
 *
 * <p>Design note: the order is the contract. The index applies first because it resolves the batch (content keys,
 * evictions, holder changes) that the log records and the feed streams. The log appends before the feed publishes,
 * and with a log the feed sends only what the log has written ({@link #followLog}), so a watcher never holds a batch
 * a crash could take back. Without a log the feed numbers batches itself; without either (tools, tests) the index
 * applies unresolved, which is cheaper.
 */
public final class BatchApplier implements IngestSink {
    /** The engine sequence a reset is logged and published under. */
    public static final long RESET_SEQUENCE = -1;

    private final BlockIndex index;
    /** Null: no log (no journal). */
    private final BatchLog log;
    /** Null: no Watch. */
    private final ChangeFeed feed;

    /**
     * @param log where batches are written ahead, or null
     * @param feed where applied batches go for Watch streams, or null
     */
    public BatchApplier(BlockIndex index, BatchLog log, ChangeFeed feed) {
        this.index = index;
        this.log = log;
        this.feed = feed;
    }

    /** Applies to the index alone: no log, no feed. */
    public static BatchApplier indexOnly(BlockIndex index) {
        return new BatchApplier(index, null, null);
    }

    /**
     * Numbers the feed as the log does, under the log's broker id, and lets it send only what the log has written.
     * Once the log is open and recovered, before ingest starts.
     */
    public void followLog() {
        feed.startAt(log.brokerId(), log.nextSequence());
        feed.limitToWritten(log::writtenThrough);
        log.onWritten(feed::written);
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        onBatch(engineId, incarnation, sequence, batch, 0, null);
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch, long fingerprint,
            GroupKinds kinds) {
        if (log == null && feed == null) {
            index.apply(engineId, incarnation, sequence, batch);
            return;
        }
        long brokerSequence = nextSequence();
        ResolvedBatch resolved = index.apply(engineId, incarnation, sequence, batch, fingerprint, brokerSequence);
        if (log != null) {
            log.append(engineId, incarnation, sequence, resolved, fingerprint, kinds);
        }
        if (feed != null) {
            feed.publish(brokerSequence, engineId, incarnation, sequence, fingerprint,
                    (long) (batch.timestamp() * 1e6), resolved);
        }
    }

    @Override
    public void onReset(int engineId, long incarnation, ResetReason reason) {
        if (reason == ResetReason.REMOVED) {
            index.remove(engineId);
            if (log != null) {
                log.forget(engineId);
            }
            if (feed != null) {
                feed.engineRemoved();
            }
            return;
        }
        if (log == null && feed == null) {
            index.reset(engineId, incarnation);
            return;
        }
        long brokerSequence = nextSequence();
        index.reset(engineId, incarnation, brokerSequence);
        if (log != null) {
            log.appendReset(engineId, incarnation);
        }
        if (feed != null) {
            feed.publish(brokerSequence, engineId, incarnation, RESET_SEQUENCE, 0, 0, ResolvedBatch.reset());
        }
    }

    @Override
    public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
        // Nothing to apply or log: ingest counts the range, and the engine's later removals of blocks never heard
        // of are harmless to the index.
    }

    @Override
    public void onRoundEnd(long nowMs) {
        if (log != null) {
            log.roundEnd(nowMs);
        }
        if (feed != null) {
            feed.wake();
        }
    }

    private long nextSequence() {
        return log != null ? log.nextSequence() : feed.next();
    }
}
