package io.kvbroker.testing;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;

/** Waits for a condition with a deadline, polling: for tests that watch other threads or processes do their work. */
public final class Await {
    private static final Duration POLL_INTERVAL = Duration.ofMillis(10);

    private Await() {
    }

    /** Returns once {@code condition} holds; fails naming {@code what} if it does not within {@code timeout}. */
    public static void until(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        until(what, timeout, condition, () -> "");
    }

    /**
     * As {@link #until(String, Duration, BooleanSupplier)}, and a failure also says what {@code detail} gives then
     * (the state that was waited on, for the log of a run that failed).
     *
     * <p>Design note: Awaitility does the waiting. The condition is polled on the caller's thread, as the loop this
     * replaced did: conditions read test state that is not always safe to read from another thread, and a failed
     * assertion inside a condition reaches the test unchanged. Uncaught exceptions of other threads are not turned
     * into failures here (Awaitility's default), for the same reason. A timeout stays an {@link AssertionError}.
     */
    public static void until(String what, Duration timeout, BooleanSupplier condition, Supplier<Object> detail)
            throws InterruptedException {
        if (Thread.interrupted()) {
            throw new InterruptedException("interrupted before waiting for " + what);
        }
        try {
            Awaitility.await(what)
                    .atMost(timeout)
                    .pollInSameThread()
                    .pollDelay(Duration.ZERO)
                    .pollInterval(POLL_INTERVAL)
                    .dontCatchUncaughtExceptions()
                    .until(condition::getAsBoolean);
        } catch (ConditionTimeoutException e) {
            Object state = detail.get();
            throw new AssertionError("timed out after " + timeout.toMillis() + " ms waiting for " + what
                    + (state == null || state.toString().isEmpty() ? "" : ": " + state), e);
        }
    }
}
