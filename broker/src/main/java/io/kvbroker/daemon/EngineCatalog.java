package io.kvbroker.daemon;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Registers the configured (and simulated) engines, giving each its id, before ingest starts. */
final class EngineCatalog implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(EngineCatalog.class);

    private final EngineRegistry registry;
    private final Supplier<List<EngineSpec>> engines;

    /** @param engines read at start: the configured engines, and the simulated ones started before this */
    EngineCatalog(EngineRegistry registry, Supplier<List<EngineSpec>> engines) {
        this.registry = registry;
        this.engines = engines;
    }

    @Override
    public String name() {
        return "engines";
    }

    @Override
    public void start() {
        List<EngineSpec> specs = engines.get();
        for (EngineSpec spec : specs) {
            int id = registry.register(spec);
            LOG.info("engine {} id={} model={} endpoint={} replay={} topic='{}'", spec.key(), id, spec.model(),
                    spec.endpoint(), spec.replayEndpoint().map(Object::toString).orElse("none"), spec.topic());
        }
        if (specs.isEmpty()) {
            LOG.info("no engines configured (engines.static is empty and simulate.engines is 0)");
        }
    }

    @Override
    public void stop(Duration budget) {
        for (EngineRegistry.Entry entry : registry.live()) {
            registry.remove(entry.id());
        }
    }
}
