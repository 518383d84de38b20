package io.kvbroker.journal;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.BiConsumer;
import java.util.function.BooleanSupplier;
import org.rocksdb.AbstractEventListener;
import org.rocksdb.BackgroundErrorReason;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.CompactionStyle;
import org.rocksdb.CompressionType;
import org.rocksdb.DBOptions;
import org.rocksdb.Env;
import org.rocksdb.FlushOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.SstFileManager;
import org.rocksdb.Status;
import org.rocksdb.WriteOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns the journal's RocksDB database: its options, column families, on-disk format and broker id, and the read/write
 * lock under which every use of the database runs and a reopen replaces it.
 *
 * <p>Design note (the journal's locking, in one place): the database is replaced by a reopen (after writes fail on
 * a full disk, see {@link GroupCommitWriter}) and closed by {@link #close}; a closed RocksDB handle must never be
 * touched, since RocksDB then crashes the process. So every read ({@link #read}) and every write attempt
 * ({@link #runLocked}) holds {@link #dbLock}'s read lock and finds {@link #db} either open or null, and
 * {@link #reopen} and {@link #close} hold its write lock. Writes themselves are ordered by the single writer thread,
 * not by this lock; the column family getters ({@link #log()} etc.) may only be called under the lock, inside a
 * {@link Read} or {@link WriteStep}.
 */
final class JournalStore implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(JournalStore.class);
    /** The on-disk layout this release writes and reads. */
    static final int FORMAT = 2;
    private static final byte[] FORMAT_KEY = "format".getBytes(StandardCharsets.UTF_8);
    private static final byte[] BROKER_ID_KEY = "broker-id".getBytes(StandardCharsets.UTF_8);

    static {
        RocksDB.loadLibrary();
    }

    /** One use of the open database, under the read lock. */
    @FunctionalInterface
    interface Read<T> {
        T run() throws RocksDBException;
    }

    /** One RocksDB write step, run by the writer in order, under the read lock. */
    @FunctionalInterface
    interface WriteStep {
        void run() throws RocksDBException;
    }

    private final Path dir;
    private final DBOptions dbOptions;
    /** Tracks the SST files' size; its space limit is how tests make the disk "full" (none by default). */
    private final SstFileManager sstFiles;
    /** Declines RocksDB's own recovery from a background error: the writer reopens instead. */
    private final AbstractEventListener noAutoRecovery;
    private final ColumnFamilyOptions logOptions;
    private final ColumnFamilyOptions plainOptions;
    private final WriteOptions writeOptions;
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
    /** Set under {@link #dbLock}'s write lock once {@link #close} closes the database: no reopen after that. */
    private boolean closed;
    /** Names this journal's sequence numbering: made when the journal is created, kept across restarts. */
    private String brokerId;

    JournalStore(Path dir, Journal.Sync sync) throws RocksDBException {
        this.dir = dir;
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
        writeOptions = new WriteOptions().setSync(sync == Journal.Sync.BATCH);
    }

    /** Opens the database in {@link #dir} with this store's options (at start, and again by a reopen). */
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

    /**
     * Checks the stored format and reads the broker id, or writes both into a {@code fresh} folder; before anyone else
     * sees the store.
     */
    void checkFormat(boolean fresh) throws RocksDBException {
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

    String brokerId() {
        return brokerId;
    }

    Path dir() {
        return dir;
    }

    // Only under the read lock (inside a Read or WriteStep): a reopen replaces them.
    RocksDB db() {
        return db;
    }

    ColumnFamilyHandle log() {
        return log;
    }

    ColumnFamilyHandle cursors() {
        return cursors;
    }

    ColumnFamilyHandle checkpoints() {
        return checkpoints;
    }

    ColumnFamilyHandle times() {
        return times;
    }

    List<ColumnFamilyHandle> handles() {
        return handles;
    }

    WriteOptions writeOptions() {
        return writeOptions;
    }

    /**
     * Runs {@code read} under the read lock, so no reopen or close replaces the database meanwhile; returns
     * {@code whenClosed} if the database is closed (the journal closed, or a reopen could not open it yet).
     */
    <T> T read(String what, T whenClosed, Read<T> read) {
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

    /** Runs one write attempt against the open database, which no reopen may replace meanwhile. */
    void runLocked(WriteStep step) throws RocksDBException {
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

    /** Visits a column family's entries; under the read lock (returns null, for {@link #read}). */
    Void forEach(ColumnFamilyHandle family, BiConsumer<byte[], byte[]> visitor) {
        try (RocksIterator it = db.newIterator(family)) {
            for (it.seekToFirst(); it.isValid(); it.next()) {
                visitor.accept(it.key(), it.value());
            }
        }
        return null;
    }

    /** The last sequence in the log, or {@code whenEmpty}; under the read or write lock. */
    long lastSequence(long whenEmpty) {
        try (RocksIterator it = db.newIterator(log)) {
            it.seekToLast();
            return it.isValid() ? sequenceOf(it.key()) : whenEmpty;
        }
    }

    /**
     * Closes the database and opens it again (the failing writer's thread, between attempts), so a write-ahead log
     * that failed is replaced by a new one; if the open fails the database stays closed and the next attempt tries
     * again. Checks that the log still ends at {@code writtenThrough}, where the writes that succeeded left it
     * ({@code first - 1} for an empty log). Returns whether it reopened; never after {@link #close} or while
     * {@code shuttingDown}.
     */
    boolean reopen(String failure, BooleanSupplier shuttingDown, long first, long writtenThrough) {
        Lock lock = dbLock.writeLock();
        lock.lock();
        try {
            if (closed || shuttingDown.getAsBoolean()) {
                return false;
            }
            LOG.warn("journal writes keep failing ({}) while {} has room again: reopening the journal", failure, dir);
            closeDatabase();
            openDatabase();
            reopens.incrementAndGet();
            long last = lastSequence(first - 1);
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
    long reopens() {
        return reopens.get();
    }

    /** Whether RocksDB's own SST space limit is reached (then a reopen would fail again). */
    boolean spaceLimitReached() {
        return sstFiles.isMaxAllowedSpaceReached();
    }

    /** Caps the size of the SST files (0: no cap); beyond it RocksDB fails writes as on a full disk (tests). */
    void limitDiskBytes(long bytes) {
        sstFiles.setMaxAllowedSpaceUsage(bytes);
    }

    /** Writes the memtables to SST files now (tests: makes a space limit bite without 64 MB of writes). */
    void flushMemtables() {
        read("flush", null, () -> {
            try (FlushOptions options = new FlushOptions().setWaitForFlush(true)) {
                db.flush(options, handles);
            }
            return null;
        });
    }

    /** Syncs the write-ahead log and closes the database for good, under the write lock; then frees the options. */
    @Override
    public void close() {
        Lock writeLock = dbLock.writeLock();
        writeLock.lock();
        try {
            closed = true;
            if (db != null) {
                db.flushWal(true);
            }
        } catch (RocksDBException e) {
            // Closing anyway: what was written so far is what a restart recovers.
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
    }

    // ---- the on-disk encoding of keys and cursors ----


    static byte[] encodeCursor(Journal.Cursor cursor) {
        return ByteBuffer.allocate(24 + 4 + cursor.kinds().length).putLong(cursor.incarnation())
                .putLong(cursor.sequence()).putLong(cursor.fingerprint()).putInt(cursor.kinds().length)
                .put(cursor.kinds()).array();
    }

    static Journal.Cursor decodeCursor(byte[] bytes) {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        long incarnation = in.getLong();
        long sequence = in.getLong();
        long fingerprint = in.getLong();
        byte[] kinds = new byte[in.getInt()];
        in.get(kinds);
        return new Journal.Cursor(incarnation, sequence, fingerprint, kinds);
    }

    /** Big-endian, so keys sort as numbers. */
    static byte[] key(long value) {
        return ByteBuffer.allocate(8).putLong(value).array();
    }

    static long sequenceOf(byte[] key) {
        return ByteBuffer.wrap(key).getLong();
    }

    static byte[] bytes(String value) {
        return value.getBytes(StandardCharsets.UTF_8);
    }
}
