package io.kvbroker.journal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
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
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.BiConsumer;
import java.util.function.LongConsumer;
import org.rocksdb.AbstractEventListener;
import org.rocksdb.BackgroundErrorReason;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.CompactionStyle;
import org.rocksdb.CompressionType;
import org.rocksdb.DBOptions;
import org.rocksdb.Env;
import org.rocksdb.Range;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.SizeApproximationFlag;
import org.rocksdb.Slice;
import org.rocksdb.SstFileManager;
import org.rocksdb.Status;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * kvbroker's RocksDB store: the replay log (one record per applied batch, in broker sequence order), each engine's
 * cursor, and each engine's last index checkpoint.
 *
 * <p>Design note: a batch's record and its engine's cursor go down in one WriteBatch, so after a crash either both are
 * there or neither: the engine is replayed from exactly the cursor that matches the log. Writes are grouped: the
 * records of up to {@link #GROUP_BATCHES} batches (or {@link #GROUP_BYTES}, or what arrived in {@link #GROUP_DELAY_MS})
 * and the last cursor of each of their engines go in one WriteBatch, since one RocksDB write costs about as much as
 * applying a hundred block events. A group not yet written is lost in a crash together with its cursors, so the engines
 * replay those batches: the log and the cursors always agree. Groups, checkpoints and deletes are written in order by
 * one writer thread, so a checkpoint never lands before the records it reflects. With {@link Sync#BATCH} every batch
 * is its own group, written and fsynced before append returns. The log is append-only and
 * trimmed from its head by range deletes, which cost one tombstone however many records they cover; its column family
 * compacts level by level with dynamic level sizes, and reads start at the first live key, never scanning tombstones.
 * A small time index (the first sequence of each second) answers retention by age without reading records. Writers:
 * the applying thread appends and checkpoints, a trimming thread deletes the head; RocksDB orders them. No RocksDB type
 * leaves this package.
 *
 * <p>Design note: a write that fails is retried until it succeeds, and when it keeps failing while the disk has room
 * again the database is closed and reopened (see {@link #writeUntilDone}), since RocksDB does not recover a write-ahead
 * log that hit a full disk. Every use of the database by another thread holds {@link #dbLock}'s read lock, and the
 * reopen its write lock, so nothing touches a closed database.
 */
public final class Journal implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Journal.class);
    static final int GROUP_BATCHES = 256;
    static final int GROUP_BYTES = 1 << 20;
    static final long GROUP_DELAY_MS = 2;
    /** The on-disk layout this release writes and reads. */
    static final int FORMAT = 2;
    private static final byte[] FORMAT_KEY = "format".getBytes(StandardCharsets.UTF_8);
    private static final byte[] BROKER_ID_KEY = "broker-id".getBytes(StandardCharsets.UTF_8);

    static {
        RocksDB.loadLibrary();
    }

    /** When the write-ahead log reaches the disk. */
    public enum Sync {
        /** fsync before each batch's write returns: nothing acknowledged is lost, at a cost per batch. */
        BATCH,
        /** fsync every {@code syncIntervalMs}: a machine crash loses at most that window, a process crash nothing. */
        INTERVAL,
        /** Left to the OS: a process crash loses nothing, a machine crash what the OS had not written. */
        NONE
    }

    /** An engine's position: where ingest resumes it after a restart. */
    public record Cursor(long incarnation, long sequence, long fingerprint, byte[] kinds) {
    }

    /** An engine's index checkpoint and the log position it reflects: records after it must be replayed. */
    public record Checkpoint(long logSequence, byte[] index) {
    }

    private final Path dir;
    /** Held from open to close: no other kvbroker opens or deletes this folder meanwhile. */
    private final JournalLock lock;
    private final Sync sync;
    private final DBOptions dbOptions;
    /** Tracks the SST files' size; its space limit is how tests make the disk "full" (none by default). */
    private final SstFileManager sstFiles;
    /** Declines RocksDB's own recovery from a background error: {@link #writeUntilDone} reopens instead. */
    private final AbstractEventListener noAutoRecovery;
    private final ColumnFamilyOptions logOptions;
    private final ColumnFamilyOptions plainOptions;
    private final List<ColumnFamilyHandle> handles = new ArrayList<>();
    /**
     * The database and its column families: replaced by a reopen, null while closed (after {@link #close}, or when a
     * reopen could not open it yet). Read and replaced under {@link #dbLock}.
     */
    private RocksDB db;
    private ColumnFamilyHandle log;
    private ColumnFamilyHandle cursors;
    private ColumnFamilyHandle checkpoints;
    private ColumnFamilyHandle times;
    /** Readers and writes of {@link #db} hold the read lock; a reopen and {@link #close} the write lock. */
    private final ReentrantReadWriteLock dbLock = new ReentrantReadWriteLock();
    /** How many times the database was reopened (recoveries from failing writes). */
    private final AtomicLong reopens = new AtomicLong();
    /** When a reopen was last tried, 0 for never (the failing writer's thread). */
    private volatile long reopenTriedMs;
    private final WriteOptions writeOptions;
    /** The next broker sequence (appending thread only). */
    private long next;
    /** The first sequence still in the log. */
    private volatile long first;
    /** Names this journal's sequence numbering: made when the journal is created, kept across restarts. */
    private String brokerId;
    /** The last second the time index has an entry for (writer thread only). */
    private long lastSecond = -1;
    // The group being gathered (appending thread only).
    private List<LogRecord> group = new ArrayList<>(GROUP_BATCHES);
    private Map<String, Cursor> groupCursors = new java.util.LinkedHashMap<>();
    private int groupBatches;
    private long groupBytes;
    private long groupSinceMs;
    /**
     * Writes groups, checkpoints and deletes of the appending thread in order, on a core of its own: RocksDB's
     * memtable and WAL work overlaps the next batches' apply. At most {@link #IN_FLIGHT} writes wait; beyond that the
     * appending thread waits (backpressure, never an unbounded queue).
     */
    private final ExecutorService writer = Executors
            .newSingleThreadExecutor(r -> {
                Thread thread = new Thread(r, "kvbroker-journal-writer");
                thread.setDaemon(true);
                return thread;
            });
    private static final int IN_FLIGHT = 4;
    /** Reopening replays the write-ahead log: not more often than this while writes keep failing. */
    private static final long REOPEN_INTERVAL_MS = 5_000;
    /** Room a reopen needs beyond the write-ahead logs' size (its info log, manifest and table file overheads). */
    private static final long REOPEN_MARGIN_BYTES = 1L << 20;
    private final Semaphore inFlight = new Semaphore(IN_FLIGHT);
    private volatile JournalException writeFailure;
    /** Set by {@link #stopRetrying} (and {@link #close}): a write that fails now is given up rather than retried. */
    private volatile boolean shuttingDown;
    /** Opens when {@link #stopRetrying} is called: a writer pausing between attempts wakes at once. */
    private final CountDownLatch stopping = new CountDownLatch(1);
    private volatile long stalledSinceMs;
    private volatile long slowWriteMillis;
    private final AtomicLong appendWaits = new AtomicLong();
    /** The last broker sequence whose record is in RocksDB (written, not necessarily fsynced). */
    private volatile long writtenThrough;
    /** Told after each group is written (the writer's thread, or the appender's with sync=batch). */
    private volatile Runnable onWritten = () -> { };
    /** Write attempts that failed (each retry of a failing write counts). */
    private final AtomicLong writeFailures = new AtomicLong();
    /** Hears each group write's duration in nanoseconds, on the thread that wrote it (metrics). */
    private volatile LongConsumer groupWriteNanos = nanos -> { };
    /** Set under {@link #dbLock}'s write lock once {@link #close} closes the database: no reopen after that. */
    private boolean closed;

    private Journal(Path dir, Sync sync, JournalLock lock) throws RocksDBException {
        this.dir = dir;
        this.lock = lock;
        this.sync = sync;
        sstFiles = new SstFileManager(Env.getDefault());
        // RocksDB's recovery from a full disk waits for a whole write buffer (64 MiB) of free space and blocks every
        // write meanwhile, past any timeout and shutdown; declined, a write fails at once and is retried here.
        noAutoRecovery = new AbstractEventListener(AbstractEventListener.EnabledEventCallback.ON_ERROR_RECOVERY_BEGIN) {
            @Override
            public boolean onErrorRecoveryBegin(BackgroundErrorReason reason, Status status) {
                return false;
            }
        };
        dbOptions = new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true)
                .setMaxBackgroundJobs(2).setSstFileManager(sstFiles).setListeners(List.of(noAutoRecovery));
        logOptions = new ColumnFamilyOptions().setCompactionStyle(CompactionStyle.LEVEL)
                .setLevelCompactionDynamicLevelBytes(true).setCompressionType(CompressionType.LZ4_COMPRESSION)
                .setWriteBufferSize(64L << 20);
        plainOptions = new ColumnFamilyOptions();
        openDatabase();
        writeOptions = new WriteOptions().setSync(sync == Sync.BATCH);
    }

    /**
     * Opens the journal in {@code dir}, creating it if there is none.
     *
     * @throws JournalException if another kvbroker holds the folder, or it holds something else, a journal of
     *     another format, or a damaged one
     */
    public static Journal open(Path dir, Sync sync) {
        return open(dir, sync, false);
    }

    /**
     * Opens the journal in {@code dir}, first deleting what it holds if {@code startFresh}; the folder is locked
     * before anything is read or deleted, and stays locked until {@link #close}.
     *
     * @throws JournalException if another kvbroker holds the folder (nothing is deleted then), or it holds something
     *     else, a journal of another format, or a damaged one
     */
    public static Journal open(Path dir, Sync sync, boolean startFresh) {
        JournalLock lock = JournalLock.acquire(dir);
        Journal journal;
        boolean fresh;
        try {
            if (startFresh) {
                LOG.warn("journal.startFresh: deleting the journal in {}; every engine is rebuilt from its own"
                        + " replay", dir);
                clear(dir);
            }
            try (var entries = Files.list(dir)) {
                fresh = entries.allMatch(JournalLock::isLockFile);
            } catch (IOException e) {
                throw new JournalException("cannot read the journal folder " + dir + ": " + e.getMessage(), e);
            }
            try {
                journal = new Journal(dir, sync, lock);
            } catch (RocksDBException e) {
                throw new JournalException("the journal in " + dir + " cannot be opened (" + e.getMessage() + "); "
                        + (e.getMessage() != null && e.getMessage().contains("lock")
                        ? "another process holds it: stop it, or point journal.dir at another directory"
                        : "to start fresh and rebuild from the engines, remove that folder or start with"
                        + " journal.startFresh=true"), e);
            }
        } catch (RuntimeException e) {
            lock.close();
            throw e;
        }
        try {
            journal.checkFormat(fresh);
            journal.loadPositions();
        } catch (RuntimeException | RocksDBException e) {
            journal.close();
            throw e instanceof JournalException je ? je : new JournalException("the journal in " + dir
                    + " is damaged (" + e.getMessage() + "); to start fresh and rebuild from the engines, remove that"
                    + " folder or start with journal.startFresh=true", e);
        }
        return journal;
    }

    /** Deletes a journal folder and everything in it, for a fresh start; refused if a kvbroker holds it. */
    public static void destroy(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (JournalLock lock = JournalLock.acquire(dir)) {
            clear(dir);
        }
        try {
            Files.deleteIfExists(dir.resolve(JournalLock.FILE_NAME));
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new JournalException("cannot remove the journal folder " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Deletes everything in a locked journal folder but the lock file. */
    private static void clear(Path dir) {
        try (var paths = Files.walk(dir)) {
            for (Path path : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                if (!path.equals(dir) && !(JournalLock.isLockFile(path) && path.getParent().equals(dir))) {
                    Files.delete(path);
                }
            }
        } catch (IOException e) {
            throw new JournalException("cannot remove the journal folder " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Opens the database in {@link #dir} with this journal's options (at start, and again by a reopen). */
    private void openDatabase() throws RocksDBException {
        List<ColumnFamilyDescriptor> descriptors = List.of(
                new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, plainOptions),
                new ColumnFamilyDescriptor(bytes("log"), logOptions),
                new ColumnFamilyDescriptor(bytes("cursors"), plainOptions),
                new ColumnFamilyDescriptor(bytes("checkpoints"), plainOptions),
                new ColumnFamilyDescriptor(bytes("times"), plainOptions));
        handles.clear();
        db = RocksDB.open(dbOptions, dir.toString(), descriptors, handles);
        log = handles.get(1);
        cursors = handles.get(2);
        checkpoints = handles.get(3);
        times = handles.get(4);
    }

    /** Closes the database and its column families, if open; under the write lock (or before anyone else sees it). */
    private void closeDatabase() {
        if (db == null) {
            return;
        }
        for (ColumnFamilyHandle handle : handles) {
            handle.close();
        }
        handles.clear();
        db.close();
        db = null;
    }

    private void checkFormat(boolean fresh) throws RocksDBException {
        byte[] stored = db.get(FORMAT_KEY);
        if (stored == null) {
            if (!fresh) {
                throw new JournalException(dir + " is not empty and holds no kvbroker journal; point journal.dir at"
                        + " an empty or kvbroker folder");
            }
            db.put(FORMAT_KEY, ByteBuffer.allocate(4).putInt(FORMAT).array());
            brokerId = java.util.UUID.randomUUID().toString();
            db.put(BROKER_ID_KEY, bytes(brokerId));
            return;
        }
        int format = ByteBuffer.wrap(stored).getInt();
        if (format != FORMAT) {
            throw new JournalException("the journal in " + dir + " has format " + format + "; this release reads "
                    + FORMAT + ". Start fresh (rebuild from the engines) with journal.startFresh=true");
        }
        byte[] id = db.get(BROKER_ID_KEY);
        if (id == null) {
            throw new JournalException("the journal in " + dir + " has no broker id");
        }
        brokerId = new String(id, StandardCharsets.UTF_8);
    }

    private void loadPositions() {
        try (RocksIterator it = db.newIterator(log)) {
            it.seekToLast();
            next = it.isValid() ? sequenceOf(it.key()) + 1 : 1;
            writtenThrough = next - 1;
            it.seekToFirst();
            first = it.isValid() ? sequenceOf(it.key()) : next;
        }
    }

    // ---- the applying thread ----

    /**
     * Appends a record and sets the engine's cursor, atomically with each other (written in the current group);
     * returns the record's broker sequence.
     */
    public long append(LogRecord record, Cursor cursor) {
        long sequence = next;
        if (groupBatches == 0) {
            groupSinceMs = record.timeMs();
        }
        group.add(record);
        groupCursors.put(record.engine(), cursor);
        groupBatches++;
        groupBytes += 64 + 16L * record.batch().changes().size();
        next = sequence + 1;
        if (sync == Sync.BATCH || groupBatches >= GROUP_BATCHES || groupBytes >= GROUP_BYTES) {
            flush();
        }
        return sequence;
    }

    /** Writes the pending group if it has waited {@link #GROUP_DELAY_MS}; ingest calls it after each loop round. */
    public void flushIfDue(long nowMs) {
        if (groupBatches > 0 && nowMs - groupSinceMs >= GROUP_DELAY_MS) {
            flush();
        }
    }

    /**
     * Hands the pending group to the writer: its records and each engine's last cursor, encoded and written there in
     * one WriteBatch, so the applying thread spends nothing on encoding or RocksDB.
     */
    public void flush() {
        if (groupBatches == 0) {
            return;
        }
        List<LogRecord> records = group;
        Map<String, Cursor> lastCursors = groupCursors;
        long firstSequence = next - records.size();
        group = new ArrayList<>(GROUP_BATCHES);
        groupCursors = new java.util.LinkedHashMap<>();
        groupBatches = 0;
        groupBytes = 0;
        write(() -> {
            long start = System.nanoTime();
            try (WriteBatch batch = new WriteBatch()) {
                long sequence = firstSequence;
                // Kept aside until the write succeeds: a retried group must put its time index entries again.
                long second = lastSecond;
                for (LogRecord record : records) {
                    batch.put(log, key(sequence), RecordCodec.encode(record));
                    if (record.timeMs() / 1000 != second) {
                        second = record.timeMs() / 1000;
                        batch.put(times, key(second), key(sequence));
                    }
                    sequence++;
                }
                for (Map.Entry<String, Cursor> cursor : lastCursors.entrySet()) {
                    batch.put(cursors, bytes(cursor.getKey()), encodeCursor(cursor.getValue()));
                }
                db.write(writeOptions, batch);
                lastSecond = second;
            }
            groupWriteNanos.accept(System.nanoTime() - start);
            writtenThrough = firstSequence + records.size() - 1;
            onWritten.run();
        });
    }

    /**
     * Hears the duration of every group write from now on (encoding and the RocksDB write, in nanoseconds), on the
     * writer thread (on the appending thread with {@link Sync#BATCH}); it must be quick.
     */
    public void observeGroupWrites(LongConsumer observer) {
        groupWriteNanos = observer;
    }

    /** Writes (groups, checkpoints, forgets, trims) that failed since the journal opened. */
    public long writeFailures() {
        return writeFailures.get();
    }

    /** One RocksDB write step, run by {@link #writer} in order. */
    @FunctionalInterface
    private interface WriteStep {
        void run() throws RocksDBException;
    }

    /** Runs a write after the ones before it: inline with fsync per batch, else on the writer thread. */
    private void write(WriteStep step) {
        if (givenUp()) {
            return;
        }
        if (sync == Sync.BATCH) {
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
     * returns, its own recovery (declined, see {@link #noAutoRecovery}) would wait for 64 MiB free with every write
     * blocked, and this API has no {@code Resume()}. So once a retry fails while the disk has room again
     * ({@link #roomToReopen}), the database is closed and reopened: RocksDB replays the write-ahead log up to the torn
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
                long slow = slowWriteMillis;
                if (slow > 0) {
                    Thread.sleep(slow);
                }
                try {
                    runLocked(step);
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
                                e.getMessage(), dir);
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

    /** Runs one write attempt against the open database, which no reopen may replace meanwhile. */
    private void runLocked(WriteStep step) throws RocksDBException {
        Lock lock = dbLock.readLock();
        lock.lock();
        try {
            if (db == null) {
                throw new JournalException("the journal's database is closed (a reopen is pending)");
            }
            step.run();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Whether a reopen is worth trying, writes having failed again (or a reopen having left the database closed):
     * when the disk has room for what the reopen writes (the write-ahead logs' contents, flushed to a table file, and a
     * margin) and RocksDB's own space limit is not reached; at most every {@link #REOPEN_INTERVAL_MS}, since reopening
     * replays the write-ahead log.
     */
    private boolean roomToReopen() {
        if (System.currentTimeMillis() - reopenTriedMs < REOPEN_INTERVAL_MS || sstFiles.isMaxAllowedSpaceReached()) {
            return false;
        }
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
     * Closes the database and opens it again (the failing writer's thread, between attempts), so a write-ahead log
     * that failed is replaced by a new one; if the open fails the database stays closed and the next attempt tries
     * again. Checks that the log still ends where the writes that succeeded left it. Returns whether it reopened.
     */
    private boolean reopen(String failure) {
        reopenTriedMs = System.currentTimeMillis();
        Lock lock = dbLock.writeLock();
        lock.lock();
        try {
            if (closed || shuttingDown) {
                return false;
            }
            LOG.warn("journal writes keep failing ({}) while {} has room again: reopening the journal", failure, dir);
            closeDatabase();
            openDatabase();
            reopens.incrementAndGet();
            long last;
            try (RocksIterator it = db.newIterator(log)) {
                it.seekToLast();
                last = it.isValid() ? sequenceOf(it.key()) : first - 1;
            }
            if (last < writtenThrough) {
                LOG.error("the reopened journal ends at record {} but records up to {} were written: records {}..{}"
                        + " are missing from the log", last, writtenThrough, last + 1, writtenThrough);
            }
            LOG.warn("journal reopened: the log ends at record {}; retrying the failed write", last);
            return true;
        } catch (RocksDBException | RuntimeException e) {
            LOG.warn("journal reopen failed ({}); tried again at the next attempt with room on {}", e.getMessage(),
                    dir);
            return false;
        } finally {
            lock.unlock();
        }
    }

    /** How many times writes that kept failing were recovered by reopening the database. */
    public long reopens() {
        return reopens.get();
    }

    /**
     * From now on a write that fails is given up at once rather than retried, and a writer waiting to retry tries
     * once more now: for shutdown, so that a full disk cannot hold ingest (waiting behind the writer) or the close
     * past the drain timeout. What is given up is replayed from the engines at the next start, as after a crash.
     */
    public void stopRetrying() {
        shuttingDown = true;
        stopping.countDown();
    }

    /**
     * The last broker sequence whose record RocksDB holds: a process crash cannot lose it (a machine crash can, up
     * to the last sync). Watch sends batches only up to here.
     */
    public long writtenThrough() {
        return writtenThrough;
    }

    /** Runs {@code listener} after each group write, on the thread that wrote it; it must be quick. */
    public void onWritten(Runnable listener) {
        this.onWritten = listener;
    }

    /** Whether writes are failing (ingest waits for them): since when, or 0 if they are not. */
    public long stalledSinceMs() {
        return stalledSinceMs;
    }

    /**
     * Caps the size of the journal's SST files (0: no cap); beyond it RocksDB fails writes as on a full disk. What
     * the tests use to fill the "disk".
     */
    void limitDiskBytes(long bytes) {
        sstFiles.setMaxAllowedSpaceUsage(bytes);
    }

    /** How many times the appending thread waited for the writer (the disk behind, or failing). */
    public long appendWaits() {
        return appendWaits.get();
    }

    /** Makes every write take {@code millis} longer: a slow disk, for tests (0: none). */
    void slowWritesForTests(long millis) {
        slowWriteMillis = millis;
    }

    /** Writes the memtables to SST files now (tests: makes a space limit bite without 64 MB of writes). */
    void flushMemtables() {
        read("flush", null, () -> {
            try (org.rocksdb.FlushOptions options = new org.rocksdb.FlushOptions().setWaitForFlush(true)) {
                db.flush(options, handles);
            }
            return null;
        });
    }

    /** Waits until every write handed to the writer is done. */
    public void awaitWrites() {
        inFlight.acquireUninterruptibly(IN_FLIGHT);
        inFlight.release(IN_FLIGHT);
        JournalException failed = writeFailure;
        if (failed != null) {
            throw failed;
        }
    }

    /** Stores an engine's index checkpoint, reflecting the log up to and including {@code logSequence}. */
    public void putCheckpoint(String engine, long logSequence, byte[] index) {
        flush();
        byte[] value = ByteBuffer.allocate(8 + index.length).putLong(logSequence).put(index).array();
        byte[] name = bytes(engine);
        write(() -> db.put(checkpoints, writeOptions, name, value));
    }

    /** Forgets an engine that left the fleet: its cursor and checkpoint (its log records age out). */
    public void forget(String engine) {
        flush();
        byte[] name = bytes(engine);
        write(() -> {
            try (WriteBatch batch = new WriteBatch()) {
                batch.delete(cursors, name);
                batch.delete(checkpoints, name);
                db.write(writeOptions, batch);
            }
        });
    }

    /** Makes everything written so far durable (for {@link Sync#INTERVAL}, and at shutdown). */
    public void syncWal() {
        // A timer calls this from its own thread and may run once more after the journal closed (or while it
        // reopens): a closed database must not be touched (RocksDB crashes the process).
        read("sync", null, () -> {
            db.flushWal(true);
            return null;
        });
    }

    /** One read of the database. */
    @FunctionalInterface
    private interface Read<T> {
        T run() throws RocksDBException;
    }

    /**
     * Runs {@code read} under the read lock, so no reopen or close replaces the database meanwhile; returns
     * {@code whenClosed} if the database is closed (the journal closed, or a reopen could not open it yet).
     */
    private <T> T read(String what, T whenClosed, Read<T> read) {
        Lock lock = dbLock.readLock();
        lock.lock();
        try {
            return db == null ? whenClosed : read.run();
        } catch (RocksDBException e) {
            throw new JournalException("journal " + what + " failed: " + e.getMessage(), e);
        } finally {
            lock.unlock();
        }
    }

    // ---- recovery ----

    public Map<String, Cursor> cursors() {
        Map<String, Cursor> result = new HashMap<>();
        read("read", null, () -> forEach(cursors, (k, v) -> result.put(new String(k, StandardCharsets.UTF_8),
                decodeCursor(v))));
        return result;
    }

    public Map<String, Checkpoint> checkpoints() {
        Map<String, Checkpoint> result = new HashMap<>();
        read("read", null, () -> forEach(checkpoints, (k, v) -> {
            ByteBuffer in = ByteBuffer.wrap(v);
            long sequence = in.getLong();
            byte[] index = new byte[in.remaining()];
            in.get(index);
            result.put(new String(k, StandardCharsets.UTF_8), new Checkpoint(sequence, index));
        }));
        return result;
    }

    /** Receives one log record and its broker sequence. */
    @FunctionalInterface
    public interface RecordVisitor {
        void record(long sequence, LogRecord record);
    }

    /**
     * The id of the broker sequence numbering this journal keeps: the same after every restart, new when the journal
     * is created (a fresh start is another numbering).
     */
    public String brokerId() {
        return brokerId;
    }

    /**
     * The record with broker sequence {@code sequence}, or null if it is not (or not yet) in the log: appends reach
     * the log in groups, so the last few may not be readable yet (nor any while a reopen is pending).
     */
    public LogRecord record(long sequence) {
        return read("read", null, () -> {
            byte[] value = db.get(log, key(sequence));
            return value == null ? null : RecordCodec.decode(value);
        });
    }

    /**
     * Visits at most {@code max} records from {@code fromSequence} on, in order, stopping at the first missing
     * sequence; returns the sequence after the last visited ({@code fromSequence} if none was).
     */
    public long readRecords(long fromSequence, int max, RecordVisitor visitor) {
        return read("read", fromSequence, () -> {
            long expected = fromSequence;
            try (Slice lower = new Slice(key(fromSequence));
                    ReadOptions options = new ReadOptions().setIterateLowerBound(lower);
                    RocksIterator it = db.newIterator(log, options)) {
                for (it.seek(key(fromSequence)); it.isValid() && expected - fromSequence < max; it.next()) {
                    long sequence = sequenceOf(it.key());
                    if (sequence != expected) {
                        break;
                    }
                    visitor.record(sequence, RecordCodec.decode(it.value()));
                    expected++;
                }
            }
            return expected;
        });
    }

    /** Visits the records from {@code fromSequence} on, in order. */
    public void forEachRecord(long fromSequence, RecordVisitor visitor) {
        read("read", null, () -> {
            try (Slice lower = new Slice(key(Math.max(fromSequence, first)));
                    ReadOptions options = new ReadOptions().setIterateLowerBound(lower);
                    RocksIterator it = db.newIterator(log, options)) {
                for (it.seek(key(Math.max(fromSequence, first))); it.isValid(); it.next()) {
                    visitor.record(sequenceOf(it.key()), RecordCodec.decode(it.value()));
                }
            }
            return null;
        });
    }

    // ---- retention (the trimming thread) ----

    /** The first sequence still in the log. */
    public long firstSequence() {
        return first;
    }

    /** The sequence the next record will get. */
    public long nextSequence() {
        return next;
    }

    /**
     * The log's approximate size on disk and in memory, in bytes; 0 while the database is closed (metrics read it from
     * their own thread, and a closed database must not be touched).
     */
    public long logBytes() {
        return bytesFrom(first);
    }

    /** Approximate bytes of the records from {@code sequence} to the end (0 while the database is closed). */
    long bytesFrom(long sequence) {
        return read("size", 0L, () -> {
            try (Slice start = new Slice(key(sequence)); Slice end = new Slice(key(Long.MAX_VALUE))) {
                long[] sizes = db.getApproximateSizes(log, List.of(new Range(start, end)),
                        SizeApproximationFlag.INCLUDE_FILES, SizeApproximationFlag.INCLUDE_MEMTABLES);
                return sizes[0];
            }
        });
    }

    /**
     * The first sequence appended at or after {@code timeMs}, or {@link #nextSequence} if none; the first sequence
     * still in the log while the database is closed (nothing to trim by age then).
     */
    long sequenceAt(long timeMs) {
        return read("read", first, () -> {
            try (RocksIterator it = db.newIterator(times)) {
                it.seek(key(timeMs / 1000));
                return it.isValid() ? sequenceOf(it.value()) : next;
            }
        });
    }

    /**
     * Deletes the records before {@code sequence}: range deletes (one tombstone, compacted away later), queued behind
     * the writes already handed over, so a group still in flight cannot land below the new head.
     */
    public void trimBefore(long sequence) {
        long from = first;
        if (sequence <= from) {
            return;
        }
        first = sequence;
        write(() -> {
            db.deleteRange(log, key(from), key(sequence));
            // Time index entries pointing below the new head go with it.
            try (RocksIterator it = db.newIterator(times)) {
                for (it.seekToFirst(); it.isValid() && sequenceOf(it.value()) < sequence; it.next()) {
                    db.delete(times, it.key());
                }
            }
        });
        read("compaction", null, () -> {
            db.compactRange(log, key(0), key(from));
            return null;
        });
    }

    public Path dir() {
        return dir;
    }

    public Sync sync() {
        return sync;
    }

    @Override
    public void close() {
        stopRetrying();
        try {
            flush();
        } catch (JournalException e) {
            // Closing anyway: what was written so far is what a restart recovers.
        }
        writer.shutdown();
        try {
            writer.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Lock writeLock = dbLock.writeLock();
        writeLock.lock();
        try {
            closed = true;
            if (db != null) {
                db.flushWal(true);
            }
        } catch (RocksDBException e) {
            // As above.
        } finally {
            closeDatabase();
            writeLock.unlock();
        }
        writeOptions.close();
        dbOptions.close();
        noAutoRecovery.close();
        sstFiles.close();
        logOptions.close();
        plainOptions.close();
        lock.close();
    }

    // ---- encoding ----

    /** Visits a column family's entries; under the read lock (returns null, for {@link #read}). */
    private Void forEach(ColumnFamilyHandle family, BiConsumer<byte[], byte[]> visitor) {
        try (RocksIterator it = db.newIterator(family)) {
            for (it.seekToFirst(); it.isValid(); it.next()) {
                visitor.accept(it.key(), it.value());
            }
        }
        return null;
    }

    static byte[] encodeCursor(Cursor cursor) {
        return ByteBuffer.allocate(24 + 4 + cursor.kinds().length).putLong(cursor.incarnation())
                .putLong(cursor.sequence()).putLong(cursor.fingerprint()).putInt(cursor.kinds().length)
                .put(cursor.kinds()).array();
    }

    static Cursor decodeCursor(byte[] bytes) {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        long incarnation = in.getLong();
        long sequence = in.getLong();
        long fingerprint = in.getLong();
        byte[] kinds = new byte[in.getInt()];
        in.get(kinds);
        return new Cursor(incarnation, sequence, fingerprint, kinds);
    }

    /** Big-endian, so keys sort as numbers. */
    private static byte[] key(long value) {
        return ByteBuffer.allocate(8).putLong(value).array();
    }

    private static long sequenceOf(byte[] key) {
        return ByteBuffer.wrap(key).getLong();
    }

    private static byte[] bytes(String value) {
        return value.getBytes(StandardCharsets.UTF_8);
    }
}
