package io.kvbroker.client;

import io.kvbroker.proto.v1.ChangeBatches;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EngineRemoved;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import io.kvbroker.proto.v1.WatchedEngine;

/** Hand-built Watch messages for tests: holdings as parallel arrays, positions as plain numbers. */
final class WatchMessages {
    private WatchMessages() {
    }

    static WatchResponse started(String brokerId, long brokerSequence, int granularity, boolean whole) {
        return WatchResponse.newBuilder().setStarted(WatchStarted.newBuilder().setBrokerId(brokerId)
                .setBrokerSequence(brokerSequence).setGranularity(granularity).setWholeSnapshot(whole)
                .setWeightGpu(1.0).setWeightCpu(0.8).setWeightStorage(0.5).setWeightOther(0.4)).build();
    }

    static WatchResponse added(int engineId, String name, String model) {
        return WatchResponse.newBuilder().setEngineAdded(WatchedEngine.newBuilder().setEngineId(engineId)
                .setName(name).setModel(model)).build();
    }

    static WatchResponse removed(int engineId, String name) {
        return WatchResponse.newBuilder().setEngineRemoved(EngineRemoved.newBuilder().setEngineId(engineId)
                .setName(name)).build();
    }

    /** A snapshot part at position (incarnation 1, {@code sequence}, fingerprint sequence * 31, broker sequence). */
    static WatchResponse snapshot(int engineId, int part, boolean last, long sequence, long brokerSequence,
            long[] keys, int[] spans, int[] media) {
        EngineSnapshot.Builder b = EngineSnapshot.newBuilder().setEngineId(engineId).setIncarnation(1)
                .setSequence(sequence).setFingerprint(sequence * 31).setBrokerSequence(brokerSequence).setPart(part)
                .setLastPart(last);
        for (int i = 0; i < keys.length; i++) {
            b.addKeys(keys[i]).addSpans(spans[i]).addMedia(media[i]);
        }
        return WatchResponse.newBuilder().setSnapshot(b).build();
    }

    /** A batch at position (incarnation 1, {@code sequence}, fingerprint sequence * 31, broker sequence). */
    static EngineBatch batch(int engineId, long sequence, long brokerSequence, boolean cleared, long[] keys,
            int[] spans, int[] media) {
        EngineBatch.Builder b = EngineBatch.newBuilder().setEngineId(engineId).setIncarnation(1).setSequence(sequence)
                .setFingerprint(sequence * 31).setBrokerSequence(brokerSequence).setCleared(cleared);
        for (int i = 0; i < keys.length; i++) {
            b.addKeys(keys[i]).addSpans(spans[i]).addMedia(media[i]);
        }
        return b.build();
    }

    static WatchResponse changes(EngineBatch... batches) {
        ChangeBatches.Builder b = ChangeBatches.newBuilder();
        for (EngineBatch batch : batches) {
            b.addBatches(batch);
        }
        return WatchResponse.newBuilder().setChanges(b).build();
    }

    static int[] repeat(int value, int n) {
        int[] out = new int[n];
        java.util.Arrays.fill(out, value);
        return out;
    }
}
