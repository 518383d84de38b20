package io.kvbroker.client;

import io.kvbroker.proto.v1.WatchResponse;

/** Receives a Watch stream's messages in order, on the watcher's thread, one at a time. */
@FunctionalInterface
public interface WatchListener {
    /**
     * Applies one message. The watcher moves its resume token past the message only after this returns, so a
     * message whose apply threw is never skipped by a resume.
     *
     * @throws RuntimeException to stop the watcher: the stream contradicts what the listener holds
     */
    void onMessage(WatchResponse message);
}
