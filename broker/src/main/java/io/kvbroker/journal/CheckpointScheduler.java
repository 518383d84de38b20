package io.kvbroker.journal;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * Decides when each engine's part of the index is checkpointed into the journal, takes the checkpoints on the ingest
 * thread between batches, and keeps the trim floor: the first log record some engine still needs.
 *
 * <p>Design note: an engine is checkpointed when it has had {@code everyBatches} batches since its last checkpoint or
 * its checkpoint is older than {@code intervalMs}, and at most one other engine that fell due is taken along per
 * batch, so a quiet engine is checkpointed too and no batch waits for more than two engines' serialization (a few
 * milliseconds at most). The log may be trimmed only below {@link #trimFloor}: the first record some engine still
 * needs because it came after that engine's checkpoint.
 */
public final class CheckpointScheduler {
    /** When engines are checkpointed. */
    public record Policy(long everyBatches, long intervalMs) {
    }

    private final BlockIndex index;
    private final EngineRegistry registry;
    private final Policy policy;
    private final LongSupplier clock;
    /** Attached when the journal opens, before ingest starts (so before the ingest thread reads it). */
    private Journal journal;
    /** Per engine id: the log sequence its checkpoint reflects (0: none), its last record, and their counts. */
    private long[] checkpointAt = new long[16];
    private long[] lastRecord = new long[16];
    private long[] batchesSinceCheckpoint = new long[16];
    private long[] checkpointTimeMs = new long[16];
    private int sweep;
    /** Written by the ingest thread only; volatile for metrics. */
    private volatile long checkpoints;
    private volatile long trimFloor = 1;
    /** Set by the trimmer when retention wants the log shorter than the checkpoints allow. */
    private volatile boolean hurry;

    public CheckpointScheduler(BlockIndex index, EngineRegistry registry, Policy policy, LongSupplier clock) {
        this.index = index;
        this.registry = registry;
        this.policy = policy;
        this.clock = clock;
    }

    /** Writes to {@code journal} from now on; before ingest starts. */
    void attach(Journal journal) {
        this.journal = journal;
    }

    /** The engine's record went into the log under {@code logSequence} at {@code now}: checkpoints what fell due. */
    void appended(int engineId, long logSequence, long now) {
        grow(engineId);
        lastRecord[engineId] = logSequence;
        batchesSinceCheckpoint[engineId]++;
        if (due(engineId, now)) {
            checkpoint(engineId, now);
        }
        // One other engine per batch, round the ids: quiet engines get their checkpoints too.
        int other = sweep = (sweep + 1) % lastRecord.length;
        if (other != engineId && due(other, now)) {
            checkpoint(other, now);
        }
        if (logSequence % 1024 == 0) {
            updateTrimFloor();
        }
    }

    /** The engine left: it needs no record any more. */
    void forget(int engineId) {
        grow(engineId);
        lastRecord[engineId] = 0;
        checkpointAt[engineId] = 0;
    }

    private boolean due(int engineId, long now) {
        if (lastRecord[engineId] <= checkpointAt[engineId]) {
            return false;
        }
        return batchesSinceCheckpoint[engineId] >= policy.everyBatches()
                || now - checkpointTimeMs[engineId] >= policy.intervalMs()
                || hurry;
    }

    private void checkpoint(int engineId, long now) {
        byte[] state = index.checkpoint(engineId);
        if (state != null) {
            journal.putCheckpoint(registry.entry(engineId).spec().key().toString(), lastRecord[engineId], state);
        }
        checkpointAt[engineId] = lastRecord[engineId];
        batchesSinceCheckpoint[engineId] = 0;
        checkpointTimeMs[engineId] = now;
        checkpoints++;
        updateTrimFloor();
    }

    private void updateTrimFloor() {
        long floor = journal.nextSequence();
        for (int e = 0; e < lastRecord.length; e++) {
            if (lastRecord[e] > checkpointAt[e]) {
                floor = Math.min(floor, checkpointAt[e] + 1);
            }
        }
        trimFloor = floor;
        if (hurry && floor >= journal.nextSequence() - 1) {
            hurry = false;
        }
    }

    /** Where recovery left an engine: its checkpoint's and last record's log sequences. */
    void recovered(int engineId, long checkpointSequence, long lastRecordSequence) {
        grow(engineId);
        checkpointAt[engineId] = checkpointSequence;
        lastRecord[engineId] = Math.max(lastRecord[engineId], lastRecordSequence);
        checkpointTimeMs[engineId] = clock.getAsLong();
        updateTrimFloor();
    }

    /** The first log sequence some engine still needs; records before it may be trimmed. */
    public long trimFloor() {
        return trimFloor;
    }

    /** Asks for the checkpoints that hold the trim floor back to be taken soon. */
    void hurry() {
        hurry = true;
    }

    /** Checkpoints taken since start. */
    public long checkpoints() {
        return checkpoints;
    }

    private void grow(int engineId) {
        if (engineId >= lastRecord.length) {
            int size = Math.max(engineId + 1, lastRecord.length * 2);
            checkpointAt = Arrays.copyOf(checkpointAt, size);
            lastRecord = Arrays.copyOf(lastRecord, size);
            batchesSinceCheckpoint = Arrays.copyOf(batchesSinceCheckpoint, size);
            checkpointTimeMs = Arrays.copyOf(checkpointTimeMs, size);
        }
    }
}
