package io.kvbroker.event;

import java.util.List;

/**
 * One batch of events as an engine published it in one scheduler step.
 *
 * @param timestamp seconds since the epoch, as the engine stamped it
 * @param dataParallelRank the rank stamped into the batch, or {@link KvEvent#ABSENT} when nil or not sent
 * @param events the events, in the engine's order; unknown event types are left out and counted
 * @param skippedEvents events left out because their type is unknown to this release
 * @param skippedFields fields (map keys, extra array positions, extra batch elements) ignored as unknown
 */
public record KvEventBatch(
        double timestamp,
        int dataParallelRank,
        List<KvEvent> events,
        int skippedEvents,
        int skippedFields) {

    /** How many blocks this batch stores or removes; a clear counts as one. */
    public int blockEventCount() {
        int count = 0;
        for (KvEvent event : events) {
            if (event instanceof BlockStored stored) {
                count += stored.blockHashes().length;
            } else if (event instanceof BlockRemoved removed) {
                count += removed.blockHashes().length;
            } else {
                count += 1;
            }
        }
        return count;
    }
}
