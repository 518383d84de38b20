package io.kvbroker.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Locale;

/**
 * One configuration key: its name, default, meaning and the one parser that validates it.
 *
 * <p>Design note: the value is always a JSON tree, whichever layer gave it (YAML file, environment, command line),
 * so a key is parsed and validated by exactly one piece of code. Scalar keys given in the environment or on the
 * command line arrive as text and the parser converts them; list keys arrive as YAML flow text parsed to a tree.
 *
 * @param <T> the parsed type
 */
public final class Setting<T> {

    /** Turns a tree into a value, or explains, naming the key, why it cannot. */
    @FunctionalInterface
    public interface Parser<T> {
        T parse(String key, JsonNode node) throws ConfigException;
    }

    private final String key;
    private final String type;
    private final T defaultValue;
    private final String defaultText;
    private final String description;
    private final boolean structured;
    private final Parser<T> parser;

    Setting(String key, String type, T defaultValue, String defaultText, String description, boolean structured,
            Parser<T> parser) {
        this.key = key;
        this.type = type;
        this.defaultValue = defaultValue;
        this.defaultText = defaultText;
        this.description = description;
        this.structured = structured;
        this.parser = parser;
    }

    public String key() {
        return key;
    }

    /** Human-readable type, for the configuration table. */
    public String type() {
        return type;
    }

    public T defaultValue() {
        return defaultValue;
    }

    /** The default as written in the configuration table and in {@code conf/broker.yaml}. */
    public String defaultText() {
        return defaultText;
    }

    public String description() {
        return description;
    }

    /** Whether values given as text (environment, flags) are YAML flow text rather than a plain scalar. */
    public boolean structured() {
        return structured;
    }

    public T parse(JsonNode node) throws ConfigException {
        return parser.parse(key, node);
    }

    /** The environment variable that overrides this key: {@code shutdown.drainTimeoutMs} is
     * {@code KVBROKER_SHUTDOWN_DRAIN_TIMEOUT_MS}. */
    public String envName() {
        StringBuilder name = new StringBuilder("KVBROKER_");
        for (int i = 0; i < key.length(); i++) {
            char c = key.charAt(i);
            if (c == '.') {
                name.append('_');
            } else if (Character.isUpperCase(c)) {
                name.append('_').append(c);
            } else {
                name.append(Character.toUpperCase(c));
            }
        }
        return name.toString().toUpperCase(Locale.ROOT);
    }
}
