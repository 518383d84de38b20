package io.kvbroker.daemon;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.JournalLog;
import io.kvbroker.journal.JournalRecovery;
import io.kvbroker.journal.JournalTrimmer;
import io.kvbroker.lifecycle.Component;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens the journal, restores the index and the engines' cursors from it before ingest starts, then keeps the log
 * trimmed and (with {@code journal.sync=interval}) the write-ahead log synced; closes the journal last on stop.
 */
final class JournalComponent implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(JournalComponent.class);
    private static final long TRIM_INTERVAL_MS = 1_000;

    /** The journal's settings. */
    record Settings(Path dir, Journal.Sync sync, long syncIntervalMs, JournalTrimmer.Retention retention,
            boolean startFresh) {
    }

    private final Settings settings;
    private final JournalLog log;
    private final BlockIndex index;
    private final EngineRegistry registry;
    private final Supplier<ZmqIngest> ingest;
    private final Runnable ready;
    private final LongConsumer groupWriteNanos;
    private volatile Journal journal;
    private volatile JournalTrimmer trimmer;
    private ScheduledExecutorService timer;
    /** Whether the last sync failed (the timer's thread only). */
    private boolean syncFailing;

    JournalComponent(Settings settings, JournalLog log, BlockIndex index, EngineRegistry registry,
            Supplier<ZmqIngest> ingest, Runnable ready) {
        this(settings, log, index, registry, ingest, ready, nanos -> { });
    }

    /** @param groupWriteNanos hears each group write's duration (metrics), on the journal's writer thread */
    JournalComponent(Settings settings, JournalLog log, BlockIndex index, EngineRegistry registry,
            Supplier<ZmqIngest> ingest, Runnable ready, LongConsumer groupWriteNanos) {
        this.groupWriteNanos = groupWriteNanos;
        this.settings = settings;
        this.log = log;
        this.index = index;
        this.registry = registry;
        this.ingest = ingest;
        this.ready = ready;
    }

    @Override
    public String name() {
        return "journal";
    }

    @Override
    public void start() {
        // Locks the folder before it deletes anything: a fresh start never clears a journal another broker holds.
        journal = Journal.open(settings.dir(), settings.sync(), settings.startFresh());
        journal.observeGroupWrites(groupWriteNanos);
        log.attach(journal);
        JournalRecovery.Result result;
        try {
            result = JournalRecovery.recover(journal, index, registry, log.checkpoints(),
                    (id, cursor) -> ingest.get().resume(id, new EngineStream.Resume(cursor.incarnation(),
                            cursor.sequence(), cursor.fingerprint(), cursor.kinds())));
        } catch (RuntimeException e) {
            journal.close();
            throw e;
        }
        LOG.info("journal {}: restored {} engines from {} checkpoints and {} log records in {} ms; log holds"
                + " records {}..{}", settings.dir(), result.engines(), result.checkpoints(), result.records(),
                result.millis(), journal.firstSequence(), journal.nextSequence() - 1);
        trimmer = new JournalTrimmer(journal, log.checkpoints(), settings.retention(), System::currentTimeMillis);
        timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread thread = new Thread(r, "kvbroker-journal");
            thread.setDaemon(true);
            return thread;
        });
        timer.scheduleWithFixedDelay(this::trim, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS, TimeUnit.MILLISECONDS);
        if (settings.sync() == Journal.Sync.INTERVAL) {
            timer.scheduleAtFixedRate(this::sync, settings.syncIntervalMs(), settings.syncIntervalMs(),
                    TimeUnit.MILLISECONDS);
        }
        ready.run();
    }

    private void trim() {
        try {
            trimmer.trim();
        } catch (RuntimeException e) {
            LOG.warn("journal trim failed, retried in {} ms: {}", TRIM_INTERVAL_MS, e.getMessage());
        }
    }

    private void sync() {
        // A task that throws is never run again: a failed sync (a full disk) must not end syncing for good. Logged
        // once until a sync succeeds; the journal's writer reports the write failures that follow.
        try {
            journal.syncWal();
            if (syncFailing) {
                syncFailing = false;
                LOG.info("journal syncs succeed again");
            }
        } catch (RuntimeException e) {
            if (!syncFailing) {
                syncFailing = true;
                LOG.warn("journal sync failed, retried every {} ms: {}", settings.syncIntervalMs(), e.getMessage());
            }
        }
    }

    Journal journal() {
        return journal;
    }

    JournalTrimmer trimmer() {
        return trimmer;
    }

    @Override
    public void stop(Duration budget) throws InterruptedException {
        if (timer != null) {
            timer.shutdownNow();
            timer.awaitTermination(budget.toMillis(), TimeUnit.MILLISECONDS);
        }
        if (journal != null) {
            journal.close();
        }
    }
}
