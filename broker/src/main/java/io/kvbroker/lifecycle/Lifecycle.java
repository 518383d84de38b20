package io.kvbroker.lifecycle;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts components in order and stops them in reverse order, within one drain budget for the whole stop.
 *
 * <p>Design note: a component that fails to start makes the lifecycle stop every component started before it, so a
 * failed start-up leaves no socket or database open. Each stop runs on its own thread and is waited for only as long
 * as the budget has left, so one stuck component cannot hold the process past its drain timeout; the next component
 * is still stopped.
 */
public final class Lifecycle {
    private static final Logger LOG = LoggerFactory.getLogger(Lifecycle.class);

    /** What happened when stopping: components that failed or did not finish within the budget. */
    public record StopReport(List<String> failed, List<String> timedOut) {
        public boolean clean() {
            return failed.isEmpty() && timedOut.isEmpty();
        }
    }

    private final List<Component> components;
    private final LongSupplier nanoTime;
    private final List<Component> started = new ArrayList<>();
    private boolean stopped;

    public Lifecycle(List<Component> components) {
        this(components, System::nanoTime);
    }

    Lifecycle(List<Component> components, LongSupplier nanoTime) {
        this.components = List.copyOf(components);
        this.nanoTime = nanoTime;
    }

    /**
     * Starts every component in order.
     *
     * @throws Exception the first component's failure, after the components already started were stopped
     */
    public synchronized void start(Duration rollbackBudget) throws Exception {
        if (stopped) {
            throw new IllegalStateException("lifecycle already stopped");
        }
        for (Component component : components) {
            try {
                LOG.debug("starting {}", component.name());
                component.start();
                started.add(component);
            } catch (Exception e) {
                LOG.error("{} failed to start: {}; stopping what was started", component.name(), e.toString());
                stop(rollbackBudget);
                throw e;
            }
        }
    }

    /** Stops every started component in reverse order, within {@code budget} in all. Safe to call twice. */
    public synchronized StopReport stop(Duration budget) {
        List<String> failed = new ArrayList<>();
        List<String> timedOut = new ArrayList<>();
        if (stopped) {
            return new StopReport(failed, timedOut);
        }
        stopped = true;
        long deadline = nanoTime.getAsLong() + budget.toNanos();
        for (int i = started.size() - 1; i >= 0; i--) {
            Component component = started.get(i);
            long leftNanos = Math.max(0, deadline - nanoTime.getAsLong());
            Throwable[] failure = new Throwable[1];
            Thread stopper = new Thread(() -> {
                try {
                    component.stop(Duration.ofNanos(leftNanos));
                } catch (Throwable t) {
                    failure[0] = t;
                }
            }, "stop-" + component.name());
            stopper.setDaemon(true);
            stopper.start();
            try {
                // Even with no budget left, give a component a moment: a stop that is quick anyway should finish.
                TimeUnit.NANOSECONDS.timedJoin(stopper, Math.max(leftNanos, TimeUnit.MILLISECONDS.toNanos(50)));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (stopper.isAlive()) {
                LOG.warn("{} did not stop within the drain budget; moving on", component.name());
                timedOut.add(component.name());
            } else if (failure[0] != null) {
                LOG.warn("{} failed while stopping: {}", component.name(), failure[0].toString());
                failed.add(component.name());
            } else {
                LOG.debug("stopped {}", component.name());
            }
        }
        started.clear();
        return new StopReport(failed, timedOut);
    }
}
