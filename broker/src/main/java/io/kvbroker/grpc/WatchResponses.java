package io.kvbroker.grpc;

import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.HoldingChanges;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.proto.v1.CaughtUp;
import io.kvbroker.proto.v1.ChangeBatches;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EngineRemoved;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import io.kvbroker.proto.v1.WatchedEngine;
import io.kvbroker.watch.FeedEntry;
import io.kvbroker.watch.WatchSink;
import java.util.List;

/** Turns a Watch stream's domain events into the API's {@code WatchResponse} messages. */
final class WatchResponses {
    private WatchResponses() {
    }

    static WatchResponse started(WatchSink.Started started) {
        return WatchResponse.newBuilder().setStarted(WatchStarted.newBuilder().setBrokerId(started.brokerId())
                .setBrokerSequence(started.brokerSequence()).setGranularity(started.granularity())
                .setWholeSnapshot(started.wholeSnapshot()).setEnginesCurrent(started.enginesCurrent())
                .setEnginesResumed(started.enginesResumed()).setEnginesSnapshotted(started.enginesSnapshotted())
                .setWeightGpu(started.weights().gpu()).setWeightCpu(started.weights().cpu())
                .setWeightStorage(started.weights().storage()).setWeightOther(started.weights().other())).build();
    }

    static WatchResponse engineAdded(int engineId, String name, String model) {
        return WatchResponse.newBuilder().setEngineAdded(WatchedEngine.newBuilder().setEngineId(engineId)
                .setName(name).setModel(model)).build();
    }

    static WatchResponse engineRemoved(int engineId, String name) {
        return WatchResponse.newBuilder().setEngineRemoved(EngineRemoved.newBuilder().setEngineId(engineId)
                .setName(name)).build();
    }

    static WatchResponse snapshotPart(WatchSink.SnapshotPart part) {
        BlockIndex.EngineHoldings h = part.holdings();
        EngineSnapshot.Builder out = EngineSnapshot.newBuilder().setEngineId(part.engineId())
                .setIncarnation(h.incarnation()).setSequence(h.sequence()).setFingerprint(h.fingerprint())
                .setBrokerSequence(h.brokerSequence()).setPart(part.part()).setLastPart(part.lastPart());
        for (int i = part.from(); i < part.to(); i++) {
            // The index packs a holding as span << 4 | media bits.
            int value = h.values()[i];
            out.addKeys(h.keys()[i]).addSpans(value >>> 4).addMedia(value & 0xF);
        }
        return WatchResponse.newBuilder().setSnapshot(out).build();
    }

    /** One message of batches, each encoded once for every stream ({@link FeedEntry#encoded}). */
    static WatchResponse changes(List<FeedEntry> batches) {
        ChangeBatches.Builder message = ChangeBatches.newBuilder();
        for (FeedEntry entry : batches) {
            message.addBatches(batch(entry));
        }
        return WatchResponse.newBuilder().setChanges(message).build();
    }

    static WatchResponse caughtUp(long brokerSequence) {
        return WatchResponse.newBuilder().setCaughtUp(CaughtUp.newBuilder().setBrokerSequence(brokerSequence))
                .build();
    }

    /** The entry's message, built by the first stream that sends it. */
    static EngineBatch batch(FeedEntry entry) {
        return entry.encoded(WatchResponses::build);
    }

    private static EngineBatch build(FeedEntry entry) {
        int stored = 0;
        int removed = 0;
        int evicted = 0;
        ResolvedBatch batch = entry.batch();
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
        EngineBatch.Builder out = EngineBatch.newBuilder().setEngineId(entry.engineId())
                .setBrokerSequence(entry.brokerSequence()).setIncarnation(entry.incarnation())
                .setSequence(entry.sequence()).setFingerprint(entry.fingerprint())
                .setEngineTimeMicros(entry.engineTimeMicros()).setCleared(holdings.cleared())
                .setStoredBlocks(stored).setRemovedBlocks(removed).setEvictedBlocks(evicted);
        for (int i = 0; i < holdings.size(); i++) {
            out.addKeys(holdings.key(i)).addSpans(holdings.span(i)).addMedia(holdings.media(i));
        }
        return out.build();
    }
}
