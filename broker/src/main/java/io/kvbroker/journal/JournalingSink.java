package io.kvbroker.journal;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.ingest.IngestSink;
import io.kvbroker.watch.ChangeFeed;
import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * Applies each batch to the index and writes it ahead to the journal in one step per batch, on the ingest thread:
 * the index resolves the batch, and its record and the engine's cursor go down in one atomic write. Checkpoints one
 * engine at a time, between batches.
 *
 * <p>Design note: an engine is checkpointed when it has had {@code checkpointEveryBatches} batches since its last
 * checkpoint or its checkpoint is older than {@code checkpointIntervalMs}, and at most one other engine that fell
 * due is taken along per batch, so a quiet engine is checkpointed too and no batch waits for more than two engines'
 * serialization (a few milliseconds at most). The log may be trimmed only below {@link #trimFloor}: the first record
 * some engine still needs because it came after that engine's checkpoint.
 */
public final class JournalingSink implements IngestSink {
    /** When engines are checkpointed. */
    public record CheckpointPolicy(long everyBatches, long intervalMs) {
    }

    private final BlockIndex index;
    /** Attached when the journal opens, before ingest starts (so before the ingest thread reads it). */
    private Journal journal;
    private final EngineRegistry registry;
    private final CheckpointPolicy policy;
    private final LongSupplier clock;
    /** Where applied batches go for Watch streams, numbered with the log's sequences; null: nowhere. */
    private final ChangeFeed feed;
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

    public JournalingSink(BlockIndex index, EngineRegistry registry, CheckpointPolicy policy, LongSupplier clock) {
        this(index, registry, policy, clock, null);
    }

    /** @param feed receives every applied batch and reset under its log sequence (Watch), or null */
    public JournalingSink(BlockIndex index, EngineRegistry registry, CheckpointPolicy policy, LongSupplier clock,
            ChangeFeed feed) {
        this.feed = feed;
        this.index = index;
        this.registry = registry;
        this.policy = policy;
        this.clock = clock;
    }

    /** Writes to {@code journal} from now on; before ingest starts. */
    public void attach(Journal journal) {
        this.journal = journal;
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        onBatch(engineId, incarnation, sequence, batch, 0, new GroupKinds());
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch, long fingerprint,
            GroupKinds kinds) {
        long logSequence = journal.nextSequence();
        ResolvedBatch resolved = index.apply(engineId, incarnation, sequence, batch, fingerprint, logSequence);
        append(engineId, incarnation, sequence, resolved, fingerprint, new Journal.Cursor(incarnation, sequence,
                fingerprint, kinds.toBytes()));
        if (feed != null) {
            feed.publish(logSequence, engineId, incarnation, sequence, fingerprint,
                    (long) (batch.timestamp() * 1e6), resolved);
        }
    }

    @Override
    public void onReset(int engineId, long incarnation, ResetReason reason) {
        if (reason == ResetReason.REMOVED) {
            index.onReset(engineId, incarnation, reason);
            journal.forget(name(engineId));
            grow(engineId);
            lastRecord[engineId] = 0;
            checkpointAt[engineId] = 0;
            if (feed != null) {
                feed.engineRemoved();
            }
            return;
        }
        long logSequence = journal.nextSequence();
        index.reset(engineId, incarnation, reason, logSequence);
        ResolvedBatch resolved = ResolvedBatch.reset();
        append(engineId, incarnation, LogRecord.RESET, resolved, 0,
                new Journal.Cursor(incarnation, LogRecord.RESET, 0, new byte[0]));
        if (feed != null) {
            feed.publish(logSequence, engineId, incarnation, LogRecord.RESET, 0, 0, resolved);
        }
    }

    @Override
    public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
        index.onUnknownHistory(engineId, incarnation, fromSequence, toSequence);
    }

    @Override
    public void onRoundEnd(long nowMs) {
        journal.flushIfDue(nowMs);
        if (feed != null) {
            feed.wake();
        }
    }

    private void append(int engineId, long incarnation, long sequence, ResolvedBatch resolved, long fingerprint,
            Journal.Cursor cursor) {
        long now = clock.getAsLong();
        long logSequence = journal.append(new LogRecord(name(engineId), incarnation, sequence, now, resolved,
                fingerprint), cursor);
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
            journal.putCheckpoint(name(engineId), lastRecord[engineId], state);
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

    private String name(int engineId) {
        return registry.entry(engineId).spec().key().toString();
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
