package io.kvbroker.testing;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A real small filesystem for full-disk tests: a tmpfs mounted on a folder, filled to the last byte and freed on
 * demand, unmounted on close.
 *
 * <p>Design note: mounting needs root (or CAP_SYS_ADMIN); where it is refused, {@link #mount} says so with an empty
 * answer and the test skips itself (an assumption, reported as skipped, not passed). RocksDB's Java API has no
 * fault-injection file system, and its SST space limit (what {@code JournalDiskFullTest} uses) does not fail the
 * write-ahead log the way a full disk does, so nothing else is faithful.
 */
public final class SmallDisk implements AutoCloseable {
    private final Path root;
    private final Path filler;

    private SmallDisk(Path root) {
        this.root = root;
        this.filler = root.resolve("filler");
    }

    /** Mounts a tmpfs of {@code sizeKib} on {@code dir} (created), or answers empty where mounting is refused. */
    public static Optional<SmallDisk> mount(Path dir, int sizeKib) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        if (run("mount", "-t", "tmpfs", "-o", "size=" + sizeKib + "k,mode=0755", "kvbroker-test", dir.toString())
                != 0) {
            return Optional.empty();
        }
        return Optional.of(new SmallDisk(dir));
    }

    public Path root() {
        return root;
    }

    /** Writes a file until the disk refuses another byte. */
    public void fill() throws IOException {
        try (OutputStream out = Files.newOutputStream(filler)) {
            for (int chunk = 64 * 1024; chunk > 0; chunk /= 2) {
                byte[] bytes = new byte[chunk];
                try {
                    while (true) {
                        out.write(bytes);
                        out.flush();
                    }
                } catch (IOException full) {
                    // No room for this much: smaller pieces, down to one byte.
                }
            }
        }
    }

    /** Deletes what {@link #fill} wrote: the disk has room again. */
    public void free() throws IOException {
        Files.deleteIfExists(filler);
    }

    /** Unmounts (lazily if something still holds a file there). */
    @Override
    public void close() throws IOException, InterruptedException {
        if (run("umount", root.toString()) != 0) {
            run("umount", "-l", root.toString());
        }
    }

    private static int run(String... command) throws IOException, InterruptedException {
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect
                    .DISCARD).start();
        } catch (IOException noCommand) {
            return -1;
        }
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            return -1;
        }
        return process.exitValue();
    }
}
