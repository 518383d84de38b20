package io.kvbroker.watch;

/**
 * Why the broker ended a Watch stream; the gRPC layer maps the reason to a status code where it maps every failure.
 */
public final class WatchEndedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Why a stream ended, and so what its client does next. */
    public enum Reason {
        /** The ring moved past the watcher's position: it resumes at once from its token. */
        FELL_BEHIND,
        /** The broker is stopping: the watcher resumes on another replica. */
        STOPPING,
        /** A fault of the broker's (logged where it happened). */
        FAILED
    }

    private final Reason reason;

    public WatchEndedException(Reason reason, String message) {
        // No stack trace: this is an outcome told to a client, not a fault to debug.
        super(message, null, false, false);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
