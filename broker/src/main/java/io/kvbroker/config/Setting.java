package io.kvbroker.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Locale;

/**
 * One configuration key: its name, default, meaning and the one parser that validates it.
 *
 * <p>Design note: the value is always a JSON tree, whichever layer gave it (YAML file, environment, command line),
 * so a key is parsed and validated by exactly one piece of code. Scalar keys given in the environment or on the
 * command line arrive as text and the parser converts them; list keys arrive as YAML flow text parsed to a tree.
 * The factories state each default once, as a typed value, and derive from it and the kind of key the text the
 * configuration table shows: its type and its default.
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

    private Setting(String key, String type, T defaultValue, String defaultText, String description,
            boolean structured, Parser<T> parser) {
        this.key = key;
        this.type = type;
        this.defaultValue = defaultValue;
        this.defaultText = defaultText;
        this.description = description;
        this.structured = structured;
        this.parser = parser;
    }

    /** A non-empty string. */
    public static Setting<String> text(String key, String defaultValue, String description) {
        return scalar(key, "string", defaultValue, quotedIfEmpty(defaultValue), description, ValueParsers.text(false));
    }

    /** A string that may be empty. */
    public static Setting<String> optionalText(String key, String defaultValue, String description) {
        return scalar(key, "string", defaultValue, quotedIfEmpty(defaultValue), description, ValueParsers.text(true));
    }

    /** A file or folder; empty, where allowed, means none. */
    public static Setting<String> path(String key, String defaultValue, String description) {
        return scalar(key, "path", defaultValue, quotedIfEmpty(defaultValue), description, ValueParsers.text(true));
    }

    /** An integer from {@code min} to {@code max}, without a unit. */
    public static Setting<Integer> integer(String key, int defaultValue, int min, int max, String description) {
        return scalar(key, "integer", defaultValue, Integer.toString(defaultValue), description,
                ValueParsers.intRange(min, max));
    }

    /** An integer from {@code min} to {@code max} counted in {@code unit}: "bytes", "tokens". */
    public static Setting<Integer> integer(String key, String unit, int defaultValue, int min, int max,
            String description) {
        return scalar(key, "integer, " + unit, defaultValue, Integer.toString(defaultValue), description,
                ValueParsers.intRange(min, max));
    }

    /** A duration in milliseconds, from {@code minMs} to {@code maxMs}. */
    public static Setting<Integer> millis(String key, int defaultMs, int minMs, int maxMs, String description) {
        return integer(key, "ms", defaultMs, minMs, maxMs, description);
    }

    /** A number from {@code min} to {@code max}. */
    public static Setting<Double> number(String key, double defaultValue, double min, double max,
            String description) {
        return scalar(key, "number", defaultValue, Double.toString(defaultValue), description,
                ValueParsers.decimal(min, max));
    }

    public static Setting<Boolean> bool(String key, boolean defaultValue, String description) {
        return scalar(key, "true or false", defaultValue, Boolean.toString(defaultValue), description,
                ValueParsers.bool());
    }

    /** One of a few lower-case words, shown in the table as "a, b or c". */
    public static Setting<String> oneOf(String key, String defaultValue, List<String> choices, String description) {
        String type = String.join(", ", choices.subList(0, choices.size() - 1)) + " or "
                + choices.get(choices.size() - 1);
        return scalar(key, type, defaultValue, defaultValue, description, ValueParsers.oneOf(choices));
    }

    /**
     * A list, empty by default, given in the environment or on the command line as YAML flow text.
     *
     * @param items what the list holds, for the table: "strings" shows as "list of strings"
     */
    public static <E> Setting<List<E>> list(String key, String items, Parser<List<E>> parser, String description) {
        return new Setting<>(key, "list of " + items, List.of(), "[]", description, true, parser);
    }

    private static <T> Setting<T> scalar(String key, String type, T defaultValue, String defaultText,
            String description, Parser<T> parser) {
        return new Setting<>(key, type, defaultValue, defaultText, description, false, parser);
    }

    /** An empty default is written {@code ""}, as YAML needs it to be a string rather than null. */
    private static String quotedIfEmpty(String text) {
        return text.isEmpty() ? "\"\"" : text;
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
