package io.kvbroker.apply;

import io.kvbroker.event.GroupKinds;
import io.kvbroker.index.ResolvedBatch;

/**
 * Where the {@link BatchApplier} writes each applied batch and reset ahead, numbered by the log's own sequence,
 * which also numbers them for Watch. The RocksDB journal ({@code journal.JournalLog}) is one; a Kafka log would be
 * another. Called on the ingest thread, except {@link #writtenThrough}.
 *
 * <p>Design note: the applier asks for {@link #nextSequence} before it applies a batch to the index (the index
 * notes it as the engine's position), and appends right after; one writer, so the sequence it was told is the one
 * the append gets.
 */
public interface BatchLog {

    /** The sequence the next append will get. */
    long nextSequence();

    /**
     * Appends a batch as the index resolved it, with what resumes its engine after a restart: the payload's
     * fingerprint and the engine's group kinds ({@code null}: none known). May write checkpoints between batches.
     *
     * @return the batch's log sequence
     */
    long append(int engineId, long incarnation, long sequence, ResolvedBatch batch, long fingerprint,
            GroupKinds kinds);

    /** Appends that everything the engine held is gone; {@code incarnation} continues. Returns its sequence. */
    long appendReset(int engineId, long incarnation);

    /** The engine left: its cursor and checkpoint are dropped (its records age out). Not numbered. */
    void forget(int engineId);

    /** Ingest finished a round of its loop: what is gathered may be written now. */
    void roundEnd(long nowMs);

    /** Names the log's numbering: the same after every restart of this log, new for a new one. */
    String brokerId();

    /** The last sequence written for good: what a crash cannot take back. Any thread. */
    long writtenThrough();

    /** Runs {@code listener} after each write moves {@link #writtenThrough} on (on the log's writer thread). */
    void onWritten(Runnable listener);
}
