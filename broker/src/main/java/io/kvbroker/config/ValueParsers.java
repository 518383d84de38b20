package io.kvbroker.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.kvbroker.net.AddressBlock;
import java.util.List;
import java.util.Locale;

/** Parsers for the scalar types settings use; each failure names the key and what was expected. */
final class ValueParsers {
    private ValueParsers() {
    }

    static Setting.Parser<Integer> intRange(int min, int max) {
        return (key, node) -> {
            long value;
            if (node.isIntegralNumber()) {
                value = node.asLong();
                if (!node.canConvertToLong()) {
                    throw new ConfigException(key, "must be an integer from " + min + " to " + max);
                }
            } else if (node.isTextual()) {
                try {
                    value = Long.parseLong(node.asText().strip().replace("_", ""));
                } catch (NumberFormatException e) {
                    throw new ConfigException(key, "must be an integer from " + min + " to " + max + ", was '"
                            + node.asText() + "'");
                }
            } else {
                throw new ConfigException(key, "must be an integer from " + min + " to " + max + ", was "
                        + describe(node));
            }
            if (value < min || value > max) {
                throw new ConfigException(key, "must be from " + min + " to " + max + ", was " + value);
            }
            return (int) value;
        };
    }

    static Setting.Parser<Double> decimal(double min, double max) {
        return (key, node) -> {
            double value;
            if (node.isNumber()) {
                value = node.asDouble();
            } else if (node.isTextual()) {
                try {
                    value = Double.parseDouble(node.asText().strip());
                } catch (NumberFormatException e) {
                    throw new ConfigException(key, "must be a number from " + min + " to " + max + ", was '"
                            + node.asText() + "'");
                }
            } else {
                throw new ConfigException(key, "must be a number from " + min + " to " + max + ", was "
                        + describe(node));
            }
            if (!(value >= min && value <= max)) {
                throw new ConfigException(key, "must be from " + min + " to " + max + ", was " + value);
            }
            return value;
        };
    }

    static Setting.Parser<String> text(boolean allowEmpty) {
        return (key, node) -> {
            if (node.isNull() && allowEmpty) {
                return "";
            }
            if (!node.isValueNode() || node.isNull()) {
                throw new ConfigException(key, "must be a string, was " + describe(node));
            }
            String value = node.asText();
            if (!allowEmpty && value.isBlank()) {
                throw new ConfigException(key, "must not be empty");
            }
            return value;
        };
    }

    static Setting.Parser<Boolean> bool() {
        return (key, node) -> {
            String value = node.isValueNode() ? node.asText().strip().toLowerCase(Locale.ROOT) : "";
            if (value.equals("true") || value.equals("false")) {
                return Boolean.parseBoolean(value);
            }
            throw new ConfigException(key, "must be true or false, was " + describe(node));
        };
    }

    /** A list of non-empty strings; a single string is taken as a one-element list. */
    static Setting.Parser<List<String>> textList() {
        return (key, node) -> {
            if (node.isNull()) {
                return List.of();
            }
            if (node.isValueNode()) {
                return List.of(text(false).parse(key, node));
            }
            if (!node.isArray()) {
                throw new ConfigException(key, "must be a list of strings, was " + describe(node));
            }
            List<String> values = new java.util.ArrayList<>();
            for (int i = 0; i < node.size(); i++) {
                values.add(text(false).parse(key + "[" + i + "]", node.get(i)).strip());
            }
            return List.copyOf(values);
        };
    }

    /** A list of IP addresses or CIDR blocks, written as literals (no name is resolved). */
    static Setting.Parser<List<AddressBlock>> addressBlocks() {
        Setting.Parser<List<String>> texts = textList();
        return (key, node) -> {
            List<String> values = texts.parse(key, node);
            List<AddressBlock> blocks = new java.util.ArrayList<>();
            for (int i = 0; i < values.size(); i++) {
                try {
                    blocks.add(AddressBlock.parse(values.get(i)));
                } catch (IllegalArgumentException e) {
                    throw new ConfigException(key + "[" + i + "]", e.getMessage());
                }
            }
            return List.copyOf(blocks);
        };
    }

    static Setting.Parser<String> oneOf(List<String> choices) {
        return (key, node) -> {
            String value = node.isValueNode() ? node.asText().strip().toLowerCase(Locale.ROOT) : null;
            if (value == null || !choices.contains(value)) {
                throw new ConfigException(key, "must be one of " + String.join(", ", choices) + ", was "
                        + describe(node));
            }
            return value;
        };
    }

    /**
     * The entries of a list of maps (a null list is empty), each checked to be a map with only known fields.
     *
     * @param what what the list holds, for messages: "engines"
     * @param shape what each entry must have, for messages: "pod, model and endpoint"
     */
    static List<JsonNode> mapEntries(String key, JsonNode node, String what, String shape,
            java.util.Set<String> fields) throws ConfigException {
        if (node.isNull()) {
            return List.of();
        }
        if (!node.isArray()) {
            throw new ConfigException(key, "must be a list of " + what + ", was " + describe(node));
        }
        List<JsonNode> entries = new java.util.ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            String at = key + "[" + i + "]";
            JsonNode entry = node.get(i);
            if (!entry.isObject()) {
                throw new ConfigException(at, "must be a map with " + shape + ", was " + describe(entry));
            }
            for (java.util.Iterator<String> names = entry.fieldNames(); names.hasNext(); ) {
                String name = names.next();
                if (!fields.contains(name)) {
                    throw new ConfigException(at + "." + name, "unknown field; known: " + String.join(", ",
                            fields.stream().sorted().toList()));
                }
            }
            entries.add(entry);
        }
        return entries;
    }

    static String describe(JsonNode node) {
        if (node.isObject()) {
            return "a map";
        }
        if (node.isArray()) {
            return "a list";
        }
        if (node.isNull()) {
            return "null";
        }
        return "'" + node.asText() + "'";
    }
}
