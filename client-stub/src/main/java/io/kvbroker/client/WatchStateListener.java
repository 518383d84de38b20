package io.kvbroker.client;

import io.grpc.Status;

/** Hears a {@link KvIndexWatcher}'s stream come and go, on the watcher's thread; every method is optional. */
public interface WatchStateListener {
    /** A stream to {@code address} started (its {@code started} message was applied). */
    default void connected(String address) {
    }

    /**
     * The stream to {@code address} ended with {@code status} (ABORTED: it fell behind and resumes at once;
     * UNAVAILABLE and other transport failures: it resumes on the next address after a backoff).
     */
    default void disconnected(String address, Status status) {
    }

    /** The watcher stopped for good: {@code failure} is null after {@link KvIndexWatcher#close()}. */
    default void stopped(Throwable failure) {
    }
}
