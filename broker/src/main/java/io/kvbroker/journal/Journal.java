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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import java.util.function.LongConsumer;
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
    private final ColumnFamilyOptions logOptions;
    private final ColumnFamilyOptions plainOptions;
    private final List<ColumnFamilyHandle> handles = new ArrayList<>();
    private final RocksDB db;
    private final ColumnFamilyHandle log;
    private final ColumnFamilyHandle cursors;
    private final ColumnFamilyHandle checkpoints;
    private final ColumnFamilyHandle times;
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
    private final Semaphore inFlight = new Semaphore(IN_FLIGHT);
    private volatile JournalException writeFailure;
    /** Set by {@link #close}: a write that fails now is given up rather than retried. */
    private volatile boolean shuttingDown;
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
    /** Set under {@link #closing} once the database is closing: size reads and syncs from other threads stop then. */
    private boolean closed;
    private final Object closing = new Object();

    private Journal(Path dir, Sync sync, JournalLock lock) throws RocksDBException {
        this.dir = dir;
        this.lock = lock;
        this.sync = sync;
        sstFiles = new SstFileManager(Env.getDefault());
        dbOptions = new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true)
                .setMaxBackgroundJobs(2).setSstFileManager(sstFiles);
        logOptions = new ColumnFamilyOptions().setCompactionStyle(CompactionStyle.LEVEL)
                .setLevelCompactionDynamicLevelBytes(true).setCompressionType(CompressionType.LZ4_COMPRESSION)
                .setWriteBufferSize(64L << 20);
        plainOptions = new ColumnFamilyOptions();
        List<ColumnFamilyDescriptor> descriptors = List.of(
                new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, plainOptions),
                new ColumnFamilyDescriptor(bytes("log"), logOptions),
                new ColumnFamilyDescriptor(bytes("cursors"), plainOptions),
                new ColumnFamilyDescriptor(bytes("checkpoints"), plainOptions),
                new ColumnFamilyDescriptor(bytes("times"), plainOptions));
        db = RocksDB.open(dbOptions, dir.toString(), descriptors, handles);
        log = handles.get(1);
        cursors = handles.get(2);
        checkpoints = handles.get(3);
        times = handles.get(4);
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
                for (LogRecord record : records) {
                    batch.put(log, key(sequence), RecordCodec.encode(record));
                    long second = record.timeMs() / 1000;
                    if (second != lastSecond) {
                        batch.put(times, key(second), key(sequence));
                        lastSecond = second;
                    }
                    sequence++;
                }
                for (Map.Entry<String, Cursor> cursor : lastCursors.entrySet()) {
                    batch.put(cursors, bytes(cursor.getKey()), encodeCursor(cursor.getValue()));
                }
                db.write(writeOptions, batch);
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
        JournalException failed = writeFailure;
        if (failed != null) {
            throw new JournalException("an earlier journal write failed: " + failed.getMessage(), failed);
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
        writer.execute(() -> {
            try {
                writeUntilDone(step);
            } finally {
                inFlight.release();
            }
        });
    }

    /**
     * Runs a write, and again while it fails (a full disk, an I/O error), pausing up to a second between attempts,
     * until it succeeds or the journal closes.
     *
     * <p>Design note: a failed group is never skipped, so the log never has a hole and recovery stays exact; while it
     * fails, the {@link #IN_FLIGHT} bound fills and the appending (ingest) thread waits, so ingest pauses and engines
     * fall back on their replay buffers, while queries go on being answered from memory. RocksDB itself leaves its
     * read-only state once space returns (its SST file manager polls for it), and the next attempt goes through.
     */
    private void writeUntilDone(WriteStep step) {
        long pauseMs = 50;
        try {
            while (true) {
                long slow = slowWriteMillis;
                if (slow > 0) {
                    Thread.sleep(slow);
                }
                try {
                    step.run();
                    long since = stalledSinceMs;
                    if (since != 0) {
                        stalledSinceMs = 0;
                        LOG.warn("journal writes succeed again after {} s: ingest resumed", String.format(
                                Locale.ROOT, "%.1f", (System.currentTimeMillis() - since) / 1000.0));
                    }
                    return;
                } catch (RocksDBException | RuntimeException e) {
                    writeFailures.incrementAndGet();
                    if (shuttingDown) {
                        writeFailure = new JournalException("journal write failed: " + e.getMessage(), e);
                        LOG.error("journal write failed while closing ({}): the batches since the last written group"
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
                }
                Thread.sleep(pauseMs);
                pauseMs = Math.min(1_000, pauseMs * 2);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            writeFailure = new JournalException("journal write interrupted", e);
        }
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
    void flushMemtables() throws RocksDBException {
        try (org.rocksdb.FlushOptions options = new org.rocksdb.FlushOptions().setWaitForFlush(true)) {
            db.flush(options, handles);
        }
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
        // A timer calls this from its own thread and may run once more after the journal closed: a closed database
        // must not be touched (RocksDB crashes the process), and close waits for a sync under way.
        synchronized (closing) {
            if (closed) {
                return;
            }
            try {
                db.flushWal(true);
            } catch (RocksDBException e) {
                throw new JournalException("journal sync failed: " + e.getMessage(), e);
            }
        }
    }

    // ---- recovery ----

    public Map<String, Cursor> cursors() {
        Map<String, Cursor> result = new HashMap<>();
        forEach(cursors, (k, v) -> result.put(new String(k, StandardCharsets.UTF_8), decodeCursor(v)));
        return result;
    }

    public Map<String, Checkpoint> checkpoints() {
        Map<String, Checkpoint> result = new HashMap<>();
        forEach(checkpoints, (k, v) -> {
            ByteBuffer in = ByteBuffer.wrap(v);
            long sequence = in.getLong();
            byte[] index = new byte[in.remaining()];
            in.get(index);
            result.put(new String(k, StandardCharsets.UTF_8), new Checkpoint(sequence, index));
        });
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
     * the log in groups, so the last few may not be readable yet.
     */
    public LogRecord record(long sequence) {
        try {
            byte[] value = db.get(log, key(sequence));
            return value == null ? null : RecordCodec.decode(value);
        } catch (RocksDBException e) {
            throw new JournalException("journal read failed: " + e.getMessage(), e);
        }
    }

    /**
     * Visits at most {@code max} records from {@code fromSequence} on, in order, stopping at the first missing
     * sequence; returns the sequence after the last visited ({@code fromSequence} if none was).
     */
    public long readRecords(long fromSequence, int max, RecordVisitor visitor) {
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
    }

    /** Visits the records from {@code fromSequence} on, in order. */
    public void forEachRecord(long fromSequence, RecordVisitor visitor) {
        try (Slice lower = new Slice(key(Math.max(fromSequence, first)));
                ReadOptions options = new ReadOptions().setIterateLowerBound(lower);
                RocksIterator it = db.newIterator(log, options)) {
            for (it.seek(key(Math.max(fromSequence, first))); it.isValid(); it.next()) {
                visitor.record(sequenceOf(it.key()), RecordCodec.decode(it.value()));
            }
        }
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
     * The log's approximate size on disk and in memory, in bytes; 0 once the journal is closing (metrics read it from
     * their own thread, and a closed database must not be touched).
     */
    public long logBytes() {
        synchronized (closing) {
            return closed ? 0 : bytesFrom(first);
        }
    }

    /** Approximate bytes of the records from {@code sequence} to the end. */
    long bytesFrom(long sequence) {
        try (Slice start = new Slice(key(sequence)); Slice end = new Slice(key(Long.MAX_VALUE))) {
            long[] sizes = db.getApproximateSizes(log, List.of(new Range(start, end)),
                    SizeApproximationFlag.INCLUDE_FILES, SizeApproximationFlag.INCLUDE_MEMTABLES);
            return sizes[0];
        }
    }

    /** The first sequence appended at or after {@code timeMs}, or {@link #nextSequence} if none. */
    long sequenceAt(long timeMs) {
        try (RocksIterator it = db.newIterator(times)) {
            it.seek(key(timeMs / 1000));
            return it.isValid() ? sequenceOf(it.value()) : next;
        }
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
        try {
            db.compactRange(log, key(0), key(from));
        } catch (RocksDBException e) {
            throw new JournalException("journal compaction failed: " + e.getMessage(), e);
        }
    }

    public Path dir() {
        return dir;
    }

    public Sync sync() {
        return sync;
    }

    @Override
    public void close() {
        shuttingDown = true;
        try {
            flush();
        } catch (JournalException e) {
            // Closing anyway: what was written so far is what a restart recovers.
        }
        writer.shutdown();
        try {
            writer.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
            db.flushWal(true);
        } catch (RocksDBException e) {
            // As above.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (closing) {
            closed = true;
        }
        for (ColumnFamilyHandle handle : handles) {
            handle.close();
        }
        db.close();
        writeOptions.close();
        dbOptions.close();
        sstFiles.close();
        logOptions.close();
        plainOptions.close();
        lock.close();
    }

    // ---- encoding ----

    private void forEach(ColumnFamilyHandle family, BiConsumer<byte[], byte[]> visitor) {
        try (RocksIterator it = db.newIterator(family)) {
            for (it.seekToFirst(); it.isValid(); it.next()) {
                visitor.accept(it.key(), it.value());
            }
        }
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
