package io.kvbroker.config;

import com.fasterxml.jackson.databind.JsonNode;
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

    static Setting.Parser<Boolean> bool() {
        return (key, node) -> {
            if (node.isBoolean()) {
                return node.asBoolean();
            }
            String value = node.isTextual() ? node.asText().strip().toLowerCase(Locale.ROOT) : "";
            if (value.equals("true") || value.equals("false")) {
                return Boolean.parseBoolean(value);
            }
            throw new ConfigException(key, "must be true or false, was " + describe(node));
        };
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
