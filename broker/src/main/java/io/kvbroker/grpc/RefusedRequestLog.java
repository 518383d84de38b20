package io.kvbroker.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.function.LongSupplier;
import java.util.logging.Filter;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Logs the requests gRPC's transport refuses before the service sees them (over {@code grpc.maxMessageBytes}) once a
 * minute, without a stack trace: a client's mistake, not a broker fault.
 *
 * <p>Design note: grpc-netty logs each one itself, at WARNING with a stack trace ("Exception processing message"),
 * through java.util.logging; a client looping on an oversized request would fill the log. No gRPC option turns it
 * off, so this is a filter on that one logger: the first refusal of a minute passes, reworded and without its
 * trace, the others are counted and named in the next line that passes. Other records of that logger pass as they
 * are.
 */
final class RefusedRequestLog implements Filter {
    static final long INTERVAL_MS = 60_000;
    /** The shaded grpc-netty class that logs a request it could not deframe. */
    static final String LOGGER = "io.grpc.netty.shaded.io.grpc.netty.NettyServerStream";
    /** Held here: java.util.logging keeps loggers weakly, and a collected logger would lose the filter. */
    private static final Logger TRANSPORT = Logger.getLogger(LOGGER);
    private static final RefusedRequestLog INSTANCE = new RefusedRequestLog();

    private volatile LongSupplier clockMs = System::currentTimeMillis;
    private long lastLoggedMs;
    private boolean loggedAny;
    private long unlogged;

    private RefusedRequestLog() {
    }

    /** Puts the filter on the transport's logger (once per JVM; every server shares the logger). */
    static void install() {
        TRANSPORT.setFilter(INSTANCE);
    }

    /** The one filter (tests), installed or not. */
    static RefusedRequestLog instance() {
        return INSTANCE;
    }

    /** For tests: the clock the minute is measured with. */
    void useClock(LongSupplier clock) {
        synchronized (this) {
            clockMs = clock;
            loggedAny = false;
            unlogged = 0;
        }
    }

    @Override
    public boolean isLoggable(LogRecord record) {
        if (!(record.getThrown() instanceof StatusRuntimeException refused)) {
            return true;
        }
        Status status = refused.getStatus();
        long skipped;
        synchronized (this) {
            long now = clockMs.getAsLong();
            if (loggedAny && now - lastLoggedMs < INTERVAL_MS) {
                unlogged++;
                return false;
            }
            loggedAny = true;
            lastLoggedMs = now;
            skipped = unlogged;
            unlogged = 0;
        }
        record.setThrown(null);
        record.setParameters(null);
        record.setMessage("refused a client's request before reading it: " + status.getCode() + ": "
                + status.getDescription()
                + (status.getCode() == Status.Code.RESOURCE_EXHAUSTED ? " (grpc.maxMessageBytes)" : "")
                + (skipped > 0 ? "; " + skipped + " more refused since the last such line" : "")
                + "; logged at most once a minute");
        return true;
    }
}
