package io.kvbroker.engine;

import java.util.Objects;
import java.util.Optional;

/**
 * What kvbroker knows about an engine before it hears from it: its name, model and sockets.
 *
 * @param key pod and data-parallel rank
 * @param model the served model name; blocks of different models never share a keyspace
 * @param endpoint the engine's PUB socket
 * @param replayEndpoint the engine's ROUTER socket for replay, if it has one (without it gaps cannot be replayed)
 * @param topic the topic the engine sends as frame 0; empty when it has none
 */
public record EngineSpec(
        EngineKey key,
        String model,
        Endpoint endpoint,
        Optional<Endpoint> replayEndpoint,
        String topic) {

    public EngineSpec {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(endpoint, "endpoint");
        Objects.requireNonNull(replayEndpoint, "replayEndpoint");
        Objects.requireNonNull(topic, "topic");
    }
}
