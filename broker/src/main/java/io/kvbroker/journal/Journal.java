package io.kvbroker.journal;

import static io.kvbroker.journal.JournalStore.bytes;
import static io.kvbroker.journal.JournalStore.decodeCursor;
import static io.kvbroker.journal.JournalStore.key;
import static io.kvbroker.journal.JournalStore.sequenceOf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;
import org.rocksdb.Range;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.SizeApproximationFlag;
import org.rocksdb.Slice;
import org.rocksdb.WriteBatch;
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
 *
 * <p>Design note: the parts live beside this class. {@link JournalStore} opens the database (options, column families,
 * format and broker id), and documents the locking: every use of the database holds its read lock, and a reopen (after
 * writes fail on a full disk) or the close its write lock, so nothing touches a closed database.
 * {@link GroupCommitWriter} gathers the groups and writes them in order on its thread, retrying a failing write until
 * it succeeds (see its {@code writeUntilDone}). {@link WriteFaults} holds what tests inject.
 */
public final class Journal implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Journal.class);
    static final int GROUP_BATCHES = 256;
    static final int GROUP_BYTES = 1 << 20;
    static final long GROUP_DELAY_MS = 2;

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
    private final JournalStore store;
    /** Faults tests inject into writes (none otherwise). */
    private final WriteFaults faults = new WriteFaults();
    private final GroupCommitWriter writer;
    /** The next broker sequence (appending thread only). */
    private long next;
    /** The first sequence still in the log. */
    private volatile long first;

    private Journal(Path dir, Sync sync, JournalLock lock) throws RocksDBException {
        this.dir = dir;
        this.lock = lock;
        this.sync = sync;
        store = new JournalStore(dir, sync);
        writer = new GroupCommitWriter(store, sync, faults, () -> first);
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
            journal.store.checkFormat(fresh);
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

    private void loadPositions() {
        // Before anyone else sees the store: no lock needed.
        next = store.lastSequence(0) + 1;
        writer.restoredThrough(next - 1);
        try (RocksIterator it = store.db().newIterator(store.log())) {
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
        next = sequence + 1;
        if (writer.add(record, cursor)) {
            flush();
        }
        return sequence;
    }

    /** Writes the pending group if it has waited {@link #GROUP_DELAY_MS}; ingest calls it after each loop round. */
    public void flushIfDue(long nowMs) {
        if (writer.due(nowMs)) {
            flush();
        }
    }

    /**
     * Hands the pending group to the writer: its records and each engine's last cursor, encoded and written there in
     * one WriteBatch, so the applying thread spends nothing on encoding or RocksDB.
     */
    public void flush() {
        writer.flush(next);
    }

    /**
     * Hears the duration of every group write from now on (encoding and the RocksDB write, in nanoseconds), on the
     * writer thread (on the appending thread with {@link Sync#BATCH}); it must be quick.
     */
    public void observeGroupWrites(LongConsumer observer) {
        writer.observeGroupWrites(observer);
    }

    /** Writes (groups, checkpoints, forgets, trims) that failed since the journal opened. */
    public long writeFailures() {
        return writer.writeFailures();
    }

    /** How many times writes that kept failing were recovered by reopening the database. */
    public long reopens() {
        return store.reopens();
    }

    /**
     * From now on a write that fails is given up at once rather than retried, and a writer waiting to retry tries
     * once more now: for shutdown, so that a full disk cannot hold ingest (waiting behind the writer) or the close
     * past the drain timeout. What is given up is replayed from the engines at the next start, as after a crash.
     */
    public void stopRetrying() {
        writer.stopRetrying();
    }

    /**
     * The last broker sequence whose record RocksDB holds: a process crash cannot lose it (a machine crash can, up
     * to the last sync). Watch sends batches only up to here.
     */
    public long writtenThrough() {
        return writer.writtenThrough();
    }

    /** Runs {@code listener} after each group write, on the thread that wrote it; it must be quick. */
    public void onWritten(Runnable listener) {
        writer.onWritten(listener);
    }

    /** Whether writes are failing (ingest waits for them): since when, or 0 if they are not. */
    public long stalledSinceMs() {
        return writer.stalledSinceMs();
    }

    /**
     * Caps the size of the journal's SST files (0: no cap); beyond it RocksDB fails writes as on a full disk. What
     * the tests use to fill the "disk".
     */
    void limitDiskBytes(long bytes) {
        store.limitDiskBytes(bytes);
    }

    /** How many times the appending thread waited for the writer (the disk behind, or failing). */
    public long appendWaits() {
        return writer.appendWaits();
    }

    /** Makes every write take {@code millis} longer: a slow disk, for tests (0: none). */
    void slowWritesForTests(long millis) {
        faults.slowWrites(millis);
    }

    /** Writes the memtables to SST files now (tests: makes a space limit bite without 64 MB of writes). */
    void flushMemtables() {
        store.flushMemtables();
    }

    /** Waits until every write handed to the writer is done. */
    public void awaitWrites() {
        writer.awaitWrites();
    }

    /** Stores an engine's index checkpoint, reflecting the log up to and including {@code logSequence}. */
    public void putCheckpoint(String engine, long logSequence, byte[] index) {
        flush();
        byte[] value = ByteBuffer.allocate(8 + index.length).putLong(logSequence).put(index).array();
        byte[] name = bytes(engine);
        writer.write(() -> store.db().put(store.checkpoints(), store.writeOptions(), name, value));
    }

    /** Forgets an engine that left the fleet: its cursor and checkpoint (its log records age out). */
    public void forget(String engine) {
        flush();
        byte[] name = bytes(engine);
        writer.write(() -> {
            try (WriteBatch batch = new WriteBatch()) {
                batch.delete(store.cursors(), name);
                batch.delete(store.checkpoints(), name);
                store.db().write(store.writeOptions(), batch);
            }
        });
    }

    /** Makes everything written so far durable (for {@link Sync#INTERVAL}, and at shutdown). */
    public void syncWal() {
        // A timer calls this from its own thread and may run once more after the journal closed (or while it
        // reopens): a closed database must not be touched (RocksDB crashes the process).
        store.read("sync", null, () -> {
            store.db().flushWal(true);
            return null;
        });
    }


    // ---- recovery ----

    public Map<String, Cursor> cursors() {
        Map<String, Cursor> result = new HashMap<>();
        store.read("read", null, () -> store.forEach(store.cursors(),
                (k, v) -> result.put(new String(k, StandardCharsets.UTF_8), decodeCursor(v))));
        return result;
    }

    public Map<String, Checkpoint> checkpoints() {
        Map<String, Checkpoint> result = new HashMap<>();
        store.read("read", null, () -> store.forEach(store.checkpoints(), (k, v) -> {
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
        return store.brokerId();
    }

    /**
     * The record with broker sequence {@code sequence}, or null if it is not (or not yet) in the log: appends reach
     * the log in groups, so the last few may not be readable yet (nor any while a reopen is pending).
     */
    public LogRecord record(long sequence) {
        return store.read("read", null, () -> {
            byte[] value = store.db().get(store.log(), key(sequence));
            return value == null ? null : RecordCodec.decode(value);
        });
    }

    /**
     * Visits at most {@code max} records from {@code fromSequence} on, in order, stopping at the first missing
     * sequence; returns the sequence after the last visited ({@code fromSequence} if none was).
     */
    public long readRecords(long fromSequence, int max, RecordVisitor visitor) {
        return store.read("read", fromSequence, () -> {
            long expected = fromSequence;
            try (Slice lower = new Slice(key(fromSequence));
                    ReadOptions options = new ReadOptions().setIterateLowerBound(lower);
                    RocksIterator it = store.db().newIterator(store.log(), options)) {
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
        store.read("read", null, () -> {
            try (Slice lower = new Slice(key(Math.max(fromSequence, first)));
                    ReadOptions options = new ReadOptions().setIterateLowerBound(lower);
                    RocksIterator it = store.db().newIterator(store.log(), options)) {
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
        return store.read("size", 0L, () -> {
            try (Slice start = new Slice(key(sequence)); Slice end = new Slice(key(Long.MAX_VALUE))) {
                long[] sizes = store.db().getApproximateSizes(store.log(), List.of(new Range(start, end)),
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
        return store.read("read", first, () -> {
            try (RocksIterator it = store.db().newIterator(store.times())) {
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
        writer.write(() -> {
            store.db().deleteRange(store.log(), key(from), key(sequence));
            // Time index entries pointing below the new head go with it.
            try (RocksIterator it = store.db().newIterator(store.times())) {
                for (it.seekToFirst(); it.isValid() && sequenceOf(it.value()) < sequence; it.next()) {
                    store.db().delete(store.times(), it.key());
                }
            }
        });
        store.read("compaction", null, () -> {
            store.db().compactRange(store.log(), key(0), key(from));
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
        writer.stopRetrying();
        try {
            flush();
        } catch (JournalException e) {
            // Closing anyway: what was written so far is what a restart recovers.
        }
        writer.shutdown();
        store.close();
        lock.close();
    }
}
