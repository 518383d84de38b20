package io.kvbroker.discovery;

import java.util.Set;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.Consumer;

/**
 * A place engines are found (the configuration, DNS, the Kubernetes API), reporting its whole current set whenever
 * it may have changed.
 *
 * <p>Design note: a source reports sets, not adds and removes, so it never has to remember what it said before; the
 * {@link EngineDiscovery} diffs, applies the grace period and tells ingest. Reporting the same set again is harmless.
 */
public interface EngineSource {

    /** Short name for logs and metrics: {@code static}, {@code dns}, {@code kubernetes}. */
    String name();

    /**
     * Starts finding engines and reports the first set before returning where it can (so that the engines known at
     * start-up are registered before ingest starts).
     *
     * @param report takes the source's whole current set; may be called from any thread
     * @param scheduler discovery's own thread, for sources that poll
     */
    void start(Consumer<Set<DiscoveredEngine>> report, ScheduledExecutorService scheduler) throws Exception;

    /** Stops finding engines; nothing is reported after it returns. */
    void stop();
}
