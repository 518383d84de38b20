package io.kvbroker.watch;

import java.util.List;

/**
 * Where a watcher asks its stream to resume: the broker that numbered its positions, and per engine (by stable name)
 * what it has applied of that engine, up to and including that batch or snapshot.
 *
 * @param brokerId the {@code broker_id} of the stream the positions came from; broker sequences compare only within it
 * @param engines positions by engine; a name given twice counts as its last position
 */
public record ResumePoint(String brokerId, List<EnginePosition> engines) {
    public ResumePoint {
        engines = List.copyOf(engines);
    }

    /**
     * What a watcher has applied of one engine.
     *
     * @param engine the engine's stable name, {@code pod/rank}
     * @param sequence the engine's sequence (the same on every replica); -1 after a reset
     * @param fingerprint the batch's payload fingerprint (the same on every replica)
     * @param brokerSequence the broker sequence of that batch or snapshot on the broker named by the point
     */
    public record EnginePosition(String engine, long incarnation, long sequence, long fingerprint,
            long brokerSequence) {
    }
}
