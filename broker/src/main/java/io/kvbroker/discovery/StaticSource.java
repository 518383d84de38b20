package io.kvbroker.discovery;

import io.kvbroker.engine.EngineSpec;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.Consumer;
import java.util.function.Supplier;

/** The engines of {@code engines.static} (and the simulated ones): one set, reported once at start. */
public final class StaticSource implements EngineSource {
    private final Supplier<List<EngineSpec>> engines;

    /** @param engines read at start, so simulated engines started before discovery are included */
    public StaticSource(Supplier<List<EngineSpec>> engines) {
        this.engines = engines;
    }

    @Override
    public String name() {
        return "static";
    }

    @Override
    public void start(Consumer<Set<DiscoveredEngine>> report, ScheduledExecutorService scheduler) {
        Set<DiscoveredEngine> set = new LinkedHashSet<>();
        for (EngineSpec spec : engines.get()) {
            set.add(new DiscoveredEngine(spec, ""));
        }
        report.accept(set);
    }

    @Override
    public void stop() {
    }
}
