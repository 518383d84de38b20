package io.kvbroker.lifecycle;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Whether the daemon is ready to answer queries: set by the daemon once every component started (and, with
 * persistence, once recovery finished), cleared first thing when it stops; the query API and its health service
 * follow it.
 *
 * <p>Design note: a flag the daemon sets, not a consequence of start order, so that a later step of start-up
 * (recovery from the journal) can hold queries off while the API already listens and answers UNAVAILABLE.
 */
public final class Readiness {
    private volatile boolean ready;
    private final List<Consumer<Boolean>> listeners = new CopyOnWriteArrayList<>();

    public boolean isReady() {
        return ready;
    }

    /** Sets the flag and tells the listeners, if it changed. */
    public synchronized void set(boolean nowReady) {
        if (ready != nowReady) {
            ready = nowReady;
            listeners.forEach(listener -> listener.accept(nowReady));
        }
    }

    /** Calls {@code listener} with the current value now and with every change. */
    public synchronized void listen(Consumer<Boolean> listener) {
        listeners.add(listener);
        listener.accept(ready);
    }
}
