package io.kvbroker.config;

import java.util.List;
import java.util.Map;

/**
 * The validated configuration kvbroker runs with: one typed value per {@link Setting}, and where each came from.
 * Immutable once loaded.
 */
public final class BrokerConfig {
    private final Map<Setting<?>, Object> values;
    private final Map<Setting<?>, String> sources;
    private final List<String> warnings;

    BrokerConfig(Map<Setting<?>, Object> values, Map<Setting<?>, String> sources, List<String> warnings) {
        this.values = Map.copyOf(values);
        this.sources = Map.copyOf(sources);
        this.warnings = List.copyOf(warnings);
    }

    /** The configuration with every key at its embedded default. */
    public static BrokerConfig defaults() {
        try {
            return ConfigLoader.load(java.util.Optional.empty(), Map.of(), Map.of());
        } catch (ConfigException e) {
            throw new IllegalStateException("embedded defaults do not validate: " + e.getMessage(), e);
        }
    }

    @SuppressWarnings("unchecked")
    public <T> T get(Setting<T> setting) {
        return (T) values.get(setting);
    }

    /** Where a key's value came from: {@code default}, {@code file PATH}, {@code env NAME} or {@code flag --set}. */
    public String source(Setting<?> setting) {
        return sources.get(setting);
    }

    /** Things worth a log line that did not stop start-up (unknown {@code KVBROKER_*} variables). */
    public List<String> warnings() {
        return warnings;
    }
}
