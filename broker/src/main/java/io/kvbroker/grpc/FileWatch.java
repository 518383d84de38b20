package io.kvbroker.grpc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads a group of files, and loads them again when one of them changes (modification time, size or inode), each
 * time {@link #check()} is called; a load that fails keeps what was loaded before.
 *
 * <p>Design note: the files are compared by their attributes, not their content, so a check costs a few stat calls.
 * Kubernetes updates a mounted Secret by swapping a symbolic link, and tools that write in place change the time or
 * size, so both are seen. A load that fails (a key written before its certificate, say) is tried again only when the
 * files change again, so a broken file logs one error, not one per check. gRPC's own file refresh in
 * {@code AdvancedTlsX509KeyManager} is not used: it waits at least a minute between checks and needs both files'
 * times to change.
 */
final class FileWatch {
    private static final Logger LOG = LoggerFactory.getLogger(FileWatch.class);

    /** Reads the files and puts what they hold to use. */
    @FunctionalInterface
    interface Loader {
        void load() throws Exception;
    }

    private record Stamp(FileTime modified, long size, Object fileKey) {
    }

    private final String what;
    private final List<Path> files;
    private final Loader loader;
    private List<Stamp> loaded;
    private List<Stamp> failed;

    /**
     * @param what the setting keys of the files, for messages: "grpc.tls.certFile and grpc.tls.keyFile"
     */
    FileWatch(String what, List<Path> files, Loader loader) {
        this.what = what;
        this.files = List.copyOf(files);
        this.loader = loader;
    }

    /** The first load; a failure names the settings and is thrown. */
    synchronized void loadNow() {
        List<Stamp> stamps = stamps();
        try {
            loader.load();
        } catch (Exception e) {
            throw new IllegalStateException(what + ": " + e.getMessage(), e);
        }
        loaded = stamps;
    }

    /** Loads again if a file changed since the last load (or the last failed one); never throws. */
    synchronized void check() {
        List<Stamp> stamps = stamps();
        if (stamps.equals(loaded) || stamps.equals(failed)) {
            return;
        }
        try {
            loader.load();
            loaded = stamps;
            failed = null;
            LOG.info("reloaded {}: new connections use it", what);
        } catch (Exception e) {
            failed = stamps;
            LOG.error("cannot reload {} ({}); keeping what was loaded before", what, e.getMessage());
        }
    }

    private List<Stamp> stamps() {
        List<Stamp> stamps = new ArrayList<>(files.size());
        for (Path file : files) {
            try {
                BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
                stamps.add(new Stamp(attributes.lastModifiedTime(), attributes.size(),
                        Objects.requireNonNullElse(attributes.fileKey(), "")));
            } catch (IOException e) {
                // A file missing for a moment (replaced by a rename): a stamp of its own, so its return is seen.
                stamps.add(new Stamp(null, -1, ""));
            }
        }
        return stamps;
    }
}
