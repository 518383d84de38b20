package io.kvbroker.journal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Holds a journal folder for one kvbroker at a time: an exclusive lock on {@value #FILE_NAME} in the folder, taken
 * before the journal is opened or deleted and held until it is closed.
 *
 * <p>Design note: the lock is the operating system's (fcntl on Linux), so it goes with the process, even on SIGKILL,
 * and needs no clean-up. It is taken before anything else, so {@code journal.startFresh} cannot delete a journal that
 * a running broker holds. Such locks belong to the process, not the channel: closing any channel on the file would
 * drop a lock this JVM holds, so folders held in this JVM are also kept in {@link #HELD} and refused without opening
 * the file at all.
 */
final class JournalLock implements AutoCloseable {
    /** The lock file; it is not part of RocksDB's store and survives a fresh start. */
    static final String FILE_NAME = "kvbroker.lock";
    private static final Set<Path> HELD = ConcurrentHashMap.newKeySet();

    private final Path dir;
    private final FileChannel channel;
    private final FileLock lock;
    private boolean closed;

    private JournalLock(Path dir, FileChannel channel, FileLock lock) {
        this.dir = dir;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes the journal folder {@code dir}, creating it if there is none.
     *
     * @throws JournalException naming the folder and the safe step if another kvbroker holds it
     */
    static JournalLock acquire(Path dir) {
        Path real;
        try {
            Files.createDirectories(dir);
            real = dir.toRealPath();
        } catch (IOException e) {
            throw new JournalException("cannot create the journal folder " + dir + ": " + e.getMessage(), e);
        }
        if (!HELD.add(real)) {
            throw held(dir, "in this same process");
        }
        FileChannel channel = null;
        try {
            channel = FileChannel.open(real.resolve(FILE_NAME), StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null) {
                String holder = holder(channel);
                channel.close();
                HELD.remove(real);
                throw held(dir, holder);
            }
            // Who holds it, for the message another process gives.
            channel.truncate(0);
            channel.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8)),
                    0);
            channel.force(false);
            return new JournalLock(real, channel, lock);
        } catch (IOException e) {
            closeQuietly(channel);
            HELD.remove(real);
            throw new JournalException("cannot lock the journal folder " + dir + " (" + FILE_NAME + "): "
                    + e.getMessage(), e);
        }
    }

    static boolean isLockFile(Path path) {
        return path.getFileName().toString().equals(FILE_NAME);
    }

    private static JournalException held(Path dir, String holder) {
        return new JournalException("another kvbroker (" + holder + ") holds journal.dir " + dir + ": stop it, or"
                + " point this one at another directory (journal.startFresh=true only clears a journal no process"
                + " holds)");
    }

    /** The pid the holder wrote, as "process N", or a plain description if it cannot be read. */
    private static String holder(FileChannel channel) {
        try {
            ByteBuffer buffer = ByteBuffer.allocate(32);
            channel.read(buffer, 0);
            String pid = new String(buffer.array(), 0, buffer.position(), StandardCharsets.UTF_8).trim();
            return pid.matches("[0-9]+") ? "process " + pid : "a process";
        } catch (IOException e) {
            return "a process";
        }
    }

    private static void closeQuietly(FileChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                // Already failing: the first error is the one worth reporting.
            }
        }
    }

    /** Releases the folder; a second call does nothing. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            lock.release();
        } catch (IOException e) {
            // The channel's close below releases it as well.
        }
        closeQuietly(channel);
        HELD.remove(dir);
    }
}
