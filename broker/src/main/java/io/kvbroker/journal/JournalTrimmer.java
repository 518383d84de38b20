package io.kvbroker.journal;

import java.util.function.LongSupplier;

/**
 * Keeps the replay log within its retention bounds: maximum bytes, maximum age and maximum records, whichever cuts
 * most, but never past the first record an engine still needs after its checkpoint. Runs on its own thread, so
 * ingest never waits for a trim.
 *
 * <p>Design note: when the bounds want more trimmed than the checkpoints allow, the {@link CheckpointScheduler} is
 * asked to hurry the checkpoints that hold the log back, and the log stays over its bound until they are taken
 * (counted).
 */
public final class JournalTrimmer {
    /** The bounds; 0 for none. */
    public record Retention(long maxBytes, long maxAgeMs, long maxBatches) {
    }

    private final Journal journal;
    private final CheckpointScheduler checkpoints;
    private final Retention retention;
    private final LongSupplier clock;
    private volatile long trimmedRecords;
    private volatile long heldByCheckpoints;

    public JournalTrimmer(Journal journal, CheckpointScheduler checkpoints, Retention retention, LongSupplier clock) {
        this.journal = journal;
        this.checkpoints = checkpoints;
        this.retention = retention;
        this.clock = clock;
    }

    /** One pass: trims what the bounds and the checkpoints allow; returns the log's first sequence after it. */
    public long trim() {
        long first = journal.firstSequence();
        long next = journal.nextSequence();
        long cutoff = first;
        if (retention.maxBatches() > 0) {
            cutoff = Math.max(cutoff, next - retention.maxBatches());
        }
        if (retention.maxAgeMs() > 0) {
            cutoff = Math.max(cutoff, journal.sequenceAt(clock.getAsLong() - retention.maxAgeMs()));
        }
        if (retention.maxBytes() > 0 && journal.bytesFrom(first) > retention.maxBytes()) {
            // The smallest head that leaves the log within its size: sizes shrink as the head moves on.
            long low = first;
            long high = next;
            while (low < high) {
                long middle = low + (high - low) / 2;
                if (journal.bytesFrom(middle) > retention.maxBytes()) {
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            cutoff = Math.max(cutoff, low);
        }
        long floor = checkpoints.trimFloor();
        if (cutoff > floor) {
            heldByCheckpoints++;
            checkpoints.hurry();
            cutoff = floor;
        }
        if (cutoff > first) {
            journal.trimBefore(cutoff);
            trimmedRecords += cutoff - first;
        }
        return journal.firstSequence();
    }

    public long trimmedRecords() {
        return trimmedRecords;
    }

    /** Passes that wanted to trim past an engine's checkpoint and waited for it instead. */
    public long heldByCheckpoints() {
        return heldByCheckpoints;
    }
}
