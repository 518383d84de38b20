package io.kvbroker.daemon;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import java.time.Duration;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Registers the configured static engines, giving each its id, before anything that talks to engines starts. */
final class EngineCatalog implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(EngineCatalog.class);

    private final EngineRegistry registry;
    private final List<EngineSpec> staticEngines;

    EngineCatalog(EngineRegistry registry, List<EngineSpec> staticEngines) {
        this.registry = registry;
        this.staticEngines = staticEngines;
    }

    @Override
    public String name() {
        return "engines";
    }

    @Override
    public void start() {
        for (EngineSpec spec : staticEngines) {
            int id = registry.register(spec);
            LOG.info("engine {} id={} model={} endpoint={} replay={} topic='{}'", spec.key(), id, spec.model(),
                    spec.endpoint(), spec.replayEndpoint().map(Object::toString).orElse("none"), spec.topic());
        }
        if (staticEngines.isEmpty()) {
            LOG.info("no engines configured (engines.static is empty)");
        }
    }

    @Override
    public void stop(Duration budget) {
        for (EngineRegistry.Entry entry : registry.live()) {
            registry.remove(entry.id());
        }
    }
}
