package io.kvbroker.discovery;

import io.kvbroker.engine.EngineSpec;
import java.util.Objects;

/**
 * One engine as a discovery source sees it: what to subscribe to, and which process instance is behind it.
 *
 * @param spec the engine's name, model and sockets; a different spec under the same key is a different engine
 * @param instance what identifies the process (a container ID); when it changes under the same spec the engine
 *     restarted. Empty when the source cannot tell
 */
public record DiscoveredEngine(EngineSpec spec, String instance) {

    public DiscoveredEngine {
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(instance, "instance");
    }
}
