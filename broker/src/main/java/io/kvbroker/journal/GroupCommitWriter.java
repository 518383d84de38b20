package io.kvbroker.journal;

import io.kvbroker.journal.Journal.Cursor;
import io.kvbroker.journal.JournalStore.WriteStep;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.function.LongSupplier;
import org.rocksdb.RocksDBException;
import org.rocksdb.WriteBatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gathers the appending thread's batches into groups and writes them, with checkpoints and deletes, in order on one
 * writer thread behind a bounded queue, retrying a failing write (and reopening the database) until it succeeds.
 *
 * <p>Design note: at most {@link #IN_FLIGHT} writes wait for the writer thread; beyond that the appending thread waits
 * (backpressure, never an unbounded queue), so RocksDB's memtable and WAL work overlaps the next batches' apply. With
 * {@link Journal.Sync#BATCH} every write runs inline on the appending thread instead. Every write attempt runs under
 * the store's read lock ({@link JournalStore#runLocked}); see {@link JournalStore} for the locking.
 */
final class GroupCommitWriter {
    private static final Logger LOG = LoggerFactory.getLogger(GroupCommitWriter.class);
    private static final int IN_FLIGHT = 4;
    /** Reopening replays the write-ahead log: not more often than this while writes keep failing. */
    private static final long REOPEN_INTERVAL_MS = 5_000;
    /** Room a reopen needs beyond the write-ahead logs' size (its info log, manifest and table file overheads). */
    private static final long REOPEN_MARGIN_BYTES = 1L << 20;

    private final JournalStore store;
    private final Journal.Sync sync;
    private final WriteFaults faults;
    /** The first sequence still in the log (the journal's), for checking the log's end after a reopen. */
    private final LongSupplier firstSequence;
    private final ExecutorService writer = Executors.newSingleThreadExecutor(r -> {
        Thread thread = new Thread(r, "kvbroker-journal-writer");
        thread.setDaemon(true);
        return thread;
    });
    private final Semaphore inFlight = new Semaphore(IN_FLIGHT);
    // The group being gathered (appending thread only).
    private List<LogRecord> group = new ArrayList<>(Journal.GROUP_BATCHES);
    private Map<String, Cursor> groupCursors = new LinkedHashMap<>();
    private long groupBytes;
    private long groupSinceMs;
    /** The last second the time index has an entry for (writer thread only). */
    private long lastSecond = -1;
    /** The last broker sequence whose record is in RocksDB (written, not necessarily fsynced). */
    private volatile long writtenThrough;
    /** Told after each group is written (the writer's thread, or the appender's with sync=batch). */
    private volatile Runnable onWritten = () -> { };
    /** Hears each group write's duration in nanoseconds, on the thread that wrote it (metrics). */
    private volatile LongConsumer groupWriteNanos = nanos -> { };
    private volatile JournalException writeFailure;
    /** Set by {@link #stopRetrying}: a write that fails now is given up rather than retried. */
    private volatile boolean shuttingDown;
    /** Opens when {@link #stopRetrying} is called: a writer pausing between attempts wakes at once. */
    private final CountDownLatch stopping = new CountDownLatch(1);
    private volatile long stalledSinceMs;
    /** When a reopen was last tried, 0 for never (the failing writer's thread). */
    private volatile long reopenTriedMs;
    private final AtomicLong appendWaits = new AtomicLong();
    /** Write attempts that failed (each retry of a failing write counts). */
    private final AtomicLong writeFailures = new AtomicLong();

    GroupCommitWriter(JournalStore store, Journal.Sync sync, WriteFaults faults, LongSupplier firstSequence) {
        this.store = store;
        this.sync = sync;
        this.faults = faults;
        this.firstSequence = firstSequence;
    }

    /** Sets where the log ends at start-up (before any write). */
    void restoredThrough(long sequence) {
        writtenThrough = sequence;
    }

    // ---- the group (appending thread) ----

    /** Adds a batch's record and its engine's cursor to the group; returns whether the group should go now. */
    boolean add(LogRecord record, Cursor cursor) {
        if (group.isEmpty()) {
            groupSinceMs = record.timeMs();
        }
        group.add(record);
        groupCursors.put(record.engine(), cursor);
        groupBytes += 64 + 16L * record.batch().changes().size();
        return sync == Journal.Sync.BATCH || group.size() >= Journal.GROUP_BATCHES
                || groupBytes >= Journal.GROUP_BYTES;
    }

    /** Whether the pending group has waited {@link Journal#GROUP_DELAY_MS}. */
    boolean due(long nowMs) {
        return !group.isEmpty() && nowMs - groupSinceMs >= Journal.GROUP_DELAY_MS;
    }

    /**
     * Hands the pending group, whose last record has sequence {@code nextSequence - 1}, to the writer: its records and
     * each engine's last cursor, encoded and written there in one WriteBatch.
     */
    void flush(long nextSequence) {
        if (group.isEmpty()) {
            return;
        }
        List<LogRecord> records = group;
        Map<String, Cursor> lastCursors = groupCursors;
        long firstSequence = nextSequence - records.size();
        group = new ArrayList<>(Journal.GROUP_BATCHES);
        groupCursors = new LinkedHashMap<>();
        groupBytes = 0;
        write(() -> {
            long start = System.nanoTime();
            try (WriteBatch batch = new WriteBatch()) {
                long sequence = firstSequence;
                // Kept aside until the write succeeds: a retried group must put its time index entries again.
                long second = lastSecond;
                for (LogRecord record : records) {
                    batch.put(store.log(), JournalStore.key(sequence), RecordCodec.encode(record));
                    if (record.timeMs() / 1000 != second) {
                        second = record.timeMs() / 1000;
                        batch.put(store.times(), JournalStore.key(second), JournalStore.key(sequence));
                    }
                    sequence++;
                }
                for (Map.Entry<String, Cursor> cursor : lastCursors.entrySet()) {
                    batch.put(store.cursors(), JournalStore.bytes(cursor.getKey()),
                            JournalStore.encodeCursor(cursor.getValue()));
                }
                store.db().write(store.writeOptions(), batch);
                lastSecond = second;
            }
            groupWriteNanos.accept(System.nanoTime() - start);
            writtenThrough = firstSequence + records.size() - 1;
            onWritten.run();
        });
    }

    long writtenThrough() {
        return writtenThrough;
    }

    void onWritten(Runnable listener) {
        this.onWritten = listener;
    }

    void observeGroupWrites(LongConsumer observer) {
        groupWriteNanos = observer;
    }

    long stalledSinceMs() {
        return stalledSinceMs;
    }

    long appendWaits() {
        return appendWaits.get();
    }

    long writeFailures() {
        return writeFailures.get();
    }

    // ---- the writer ----

    /** Runs a write after the ones before it: inline with fsync per batch, else on the writer thread. */
    void write(WriteStep step) {
        if (givenUp()) {
            return;
        }
        if (sync == Journal.Sync.BATCH) {
            writeUntilDone(step);
            return;
        }
        if (!inFlight.tryAcquire()) {
            // The disk is behind: the appending thread waits (counted), never queues without bound.
            appendWaits.incrementAndGet();
            inFlight.acquireUninterruptibly();
        }
        try {
            // A write given up while this thread waited: nothing after it may reach the log (it would leave a hole).
            if (givenUp()) {
                inFlight.release();
                return;
            }
            writer.execute(() -> {
                try {
                    writeUntilDone(step);
                } finally {
                    inFlight.release();
                }
            });
        } catch (RuntimeException e) {
            inFlight.release();
            throw e instanceof RejectedExecutionException ? new JournalException("the journal is closed", e) : e;
        }
    }

    /** Waits until every write handed to the writer is done; throws if one failed. */
    void awaitWrites() {
        inFlight.acquireUninterruptibly(IN_FLIGHT);
        inFlight.release(IN_FLIGHT);
        JournalException failed = writeFailure;
        if (failed != null) {
            throw failed;
        }
    }

    /**
     * Whether an earlier write was given up while stopping: then this one is dropped too, quietly (the failure was
     * logged once, and the engines replay it all at the next start). Throws if an earlier write failed otherwise.
     */
    private boolean givenUp() {
        JournalException failed = writeFailure;
        if (failed == null) {
            return false;
        }
        if (shuttingDown) {
            return true;
        }
        throw new JournalException("an earlier journal write failed: " + failed.getMessage(), failed);
    }

    /**
     * Runs a write, and again while it fails (a full disk, an I/O error), pausing up to a second between attempts,
     * until it succeeds or the journal stops retrying; a write after one that was given up is skipped.
     *
     * <p>Design note: a failed group is never skipped, so the log never has a hole and recovery stays exact; while it
     * fails, the {@link #IN_FLIGHT} bound fills and the appending (ingest) thread waits, so ingest pauses and engines
     * fall back on their replay buffers, while queries go on being answered from memory. RocksDB does not recover by
     * itself here: a write-ahead log that hit a full disk keeps failing with "Writer has previous error" after space
     * returns, its own recovery (declined by the store) would wait for 64 MiB free with every write blocked, and this
     * API has no {@code Resume()}. So once a retry fails while the disk has room again ({@link #roomToReopen}), the
     * database is closed and reopened ({@link JournalStore#reopen}): RocksDB replays the write-ahead log up to the torn
     * record of the failed write and starts a new one, and the failed write is retried on it. What was acknowledged
     * is in the old log (the process did not stop), and a group's puts are idempotent (keys are broker sequences and
     * engine names), so a retry never doubles a record whether or not its first attempt reached the log.
     */
    private void writeUntilDone(WriteStep step) {
        long pauseMs = 50;
        int failures = 0;
        try {
            while (true) {
                if (writeFailure != null) {
                    // Given up on an earlier write (stopping): a later one must not land after the hole.
                    return;
                }
                faults.beforeWrite();
                try {
                    store.runLocked(step);
                    long since = stalledSinceMs;
                    if (since != 0) {
                        stalledSinceMs = 0;
                        LOG.warn("journal writes succeed again after {} s: ingest resumed", String.format(
                                Locale.ROOT, "%.1f", (System.currentTimeMillis() - since) / 1000.0));
                    }
                    return;
                } catch (RocksDBException | RuntimeException e) {
                    writeFailures.incrementAndGet();
                    failures++;
                    if (shuttingDown) {
                        writeFailure = new JournalException("journal write failed: " + e.getMessage(), e);
                        LOG.error("journal write failed while stopping ({}): the batches since the last written group"
                                + " are not in the journal; at start-up they are replayed from the engines",
                                e.getMessage());
                        return;
                    }
                    if (stalledSinceMs == 0) {
                        stalledSinceMs = System.currentTimeMillis();
                        LOG.error("journal write failed ({}): ingest is paused until the write succeeds (retried"
                                + " every second at most); queries are answered from memory. Free space in {}",
                                e.getMessage(), store.dir());
                    }
                    if (failures >= 2 && roomToReopen() && reopen(e.getMessage())) {
                        // Retried on the new database at once.
                        continue;
                    }
                }
                if (stopping.await(pauseMs, TimeUnit.MILLISECONDS)) {
                    // Stopping: one last attempt now, given up if it fails.
                    pauseMs = 0;
                } else {
                    pauseMs = Math.min(1_000, pauseMs * 2);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            writeFailure = new JournalException("journal write interrupted", e);
        }
    }

    private boolean reopen(String failure) {
        reopenTriedMs = System.currentTimeMillis();
        return store.reopen(failure, () -> shuttingDown, firstSequence.getAsLong(), writtenThrough);
    }

    /**
     * Whether a reopen is worth trying, writes having failed again (or a reopen having left the database closed):
     * when the disk has room for what the reopen writes (the write-ahead logs' contents, flushed to a table file, and a
     * margin) and RocksDB's own space limit is not reached; at most every {@link #REOPEN_INTERVAL_MS}, since reopening
     * replays the write-ahead log.
     */
    private boolean roomToReopen() {
        if (System.currentTimeMillis() - reopenTriedMs < REOPEN_INTERVAL_MS || store.spaceLimitReached()) {
            return false;
        }
        Path dir = store.dir();
        long walBytes = 0;
        try (var files = Files.list(dir)) {
            for (Path file : files.filter(f -> f.getFileName().toString().endsWith(".log")).toList()) {
                walBytes += Files.size(file);
            }
            return Files.getFileStore(dir).getUsableSpace() >= walBytes + REOPEN_MARGIN_BYTES;
        } catch (IOException e) {
            // The folder cannot even be read: the next attempt tells more.
            return false;
        }
    }

    /**
     * From now on a write that fails is given up at once rather than retried, and a writer waiting to retry tries
     * once more now.
     */
    void stopRetrying() {
        shuttingDown = true;
        stopping.countDown();
    }

    /** Lets the writes handed over finish (up to 30 s) and stops the writer thread. */
    void shutdown() {
        writer.shutdown();
        try {
            writer.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
