package io.kvbroker.journal;

import io.kvbroker.apply.BatchLog;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.ResolvedBatch;
import java.util.function.LongSupplier;

/**
 * The {@link BatchLog} kept in the RocksDB {@link Journal}: each record goes down with its engine's new cursor, and
 * the {@link CheckpointScheduler} checkpoints engines between records. Engines are named, not numbered, in the
 * journal, so a record outlives the process.
 */
public final class JournalLog implements BatchLog {
    private static final byte[] NO_KINDS = new byte[0];

    private final EngineRegistry registry;
    private final CheckpointScheduler checkpoints;
    private final LongSupplier clock;
    /** Attached when the journal opens, before ingest starts (so before the ingest thread reads it). */
    private Journal journal;

    /** @param index the index whose engines are checkpointed */
    public JournalLog(BlockIndex index, EngineRegistry registry, CheckpointScheduler.Policy policy,
            LongSupplier clock) {
        this.registry = registry;
        this.clock = clock;
        this.checkpoints = new CheckpointScheduler(index, registry, policy, clock);
    }

    /** Writes to {@code journal} from now on; before recovery and ingest start. */
    public void attach(Journal journal) {
        this.journal = journal;
        checkpoints.attach(journal);
    }

    /** When engines are checkpointed, and how far the log may be trimmed. */
    public CheckpointScheduler checkpoints() {
        return checkpoints;
    }

    @Override
    public long nextSequence() {
        return journal.nextSequence();
    }

    @Override
    public long append(int engineId, long incarnation, long sequence, ResolvedBatch batch, long fingerprint,
            GroupKinds kinds) {
        byte[] kindBytes = (kinds == null ? new GroupKinds() : kinds).toBytes();
        return append(engineId, incarnation, sequence, batch, fingerprint,
                new Journal.Cursor(incarnation, sequence, fingerprint, kindBytes));
    }

    @Override
    public long appendReset(int engineId, long incarnation) {
        return append(engineId, incarnation, LogRecord.RESET, ResolvedBatch.reset(), 0,
                new Journal.Cursor(incarnation, LogRecord.RESET, 0, NO_KINDS));
    }

    private long append(int engineId, long incarnation, long sequence, ResolvedBatch batch, long fingerprint,
            Journal.Cursor cursor) {
        long now = clock.getAsLong();
        long logSequence = journal.append(new LogRecord(name(engineId), incarnation, sequence, now, batch,
                fingerprint), cursor);
        checkpoints.appended(engineId, logSequence, now);
        return logSequence;
    }

    @Override
    public void forget(int engineId) {
        journal.forget(name(engineId));
        checkpoints.forget(engineId);
    }

    @Override
    public void roundEnd(long nowMs) {
        journal.flushIfDue(nowMs);
    }

    @Override
    public String brokerId() {
        return journal.brokerId();
    }

    @Override
    public long writtenThrough() {
        return journal.writtenThrough();
    }

    @Override
    public void onWritten(Runnable listener) {
        journal.onWritten(listener);
    }

    private String name(int engineId) {
        return registry.entry(engineId).spec().key().toString();
    }
}
