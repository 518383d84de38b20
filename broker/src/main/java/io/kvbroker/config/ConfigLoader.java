package io.kvbroker.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Resolves every setting from its layers, lowest first: the embedded default, the YAML file, the environment
 * ({@code KVBROKER_*}), and {@code --set key=value} flags; then parses and validates each value once.
 *
 * <p>Design note: all of this happens before any socket or database opens, and the first bad value stops start-up
 * with a message naming its key. An unknown key in the file or a flag is an error (a typo would otherwise silently
 * keep a default); an unknown {@code KVBROKER_*} environment variable is only a warning, because Kubernetes injects
 * {@code KVBROKER_SERVICE_HOST}-style variables for a Service named kvbroker.
 */
public final class ConfigLoader {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    private ConfigLoader() {
    }

    /**
     * @param file the YAML file, if one was given
     * @param env the process environment
     * @param flags {@code --set} overrides, key to value text, in the order given
     */
    public static BrokerConfig load(Optional<Path> file, Map<String, String> env, Map<String, String> flags)
            throws ConfigException {
        Map<Setting<?>, JsonNode> raw = new LinkedHashMap<>();
        Map<Setting<?>, String> sources = new HashMap<>();
        List<String> warnings = new ArrayList<>();

        if (file.isPresent()) {
            Path path = file.get();
            JsonNode tree = readYaml(path);
            if (tree != null && !tree.isMissingNode() && !tree.isNull()) {
                if (!tree.isObject()) {
                    throw new ConfigException("--config", path + " must hold a map of settings");
                }
                flatten("", tree, path, raw, sources);
            }
        }
        for (Setting<?> setting : Settings.ALL) {
            String value = env.get(setting.envName());
            if (value != null) {
                raw.put(setting, fromText(setting, value));
                sources.put(setting, "env " + setting.envName());
            }
        }
        for (String name : env.keySet()) {
            if (name.startsWith("KVBROKER_") && !isKnownEnv(name) && !isKubernetesServiceLink(name)) {
                warnings.add("environment variable " + name + " is not a kvbroker setting; ignored");
            }
        }
        for (Map.Entry<String, String> flag : flags.entrySet()) {
            Setting<?> setting = Settings.BY_KEY.get(flag.getKey());
            if (setting == null) {
                throw new ConfigException(flag.getKey(), "unknown key in --set" + suggestion(flag.getKey()));
            }
            raw.put(setting, fromText(setting, flag.getValue()));
            sources.put(setting, "flag --set");
        }

        Map<Setting<?>, Object> values = new LinkedHashMap<>();
        for (Setting<?> setting : Settings.ALL) {
            JsonNode node = raw.get(setting);
            values.put(setting, node == null ? setting.defaultValue() : setting.parse(node));
            sources.putIfAbsent(setting, "default");
        }
        Settings.checkTogether(values);
        return new BrokerConfig(values, sources, warnings);
    }

    private static JsonNode readYaml(Path path) throws ConfigException {
        // Not only regular files: /dev/null (no settings: every default) and a pipe (--config <(...)) read too.
        if (!Files.exists(path)) {
            throw new ConfigException("--config", "no such file: " + path);
        }
        if (Files.isDirectory(path)) {
            throw new ConfigException("--config", path + " is a directory; give the YAML file in it");
        }
        try (InputStream in = Files.newInputStream(path)) {
            return YAML.readTree(in);
        } catch (JsonProcessingException e) {
            throw new ConfigException("--config", path + " is not valid YAML: " + e.getOriginalMessage()
                    + (e.getLocation() != null ? " (line " + e.getLocation().getLineNr() + ")" : ""));
        } catch (AccessDeniedException e) {
            throw new ConfigException("--config", "cannot read " + path + ": permission denied");
        } catch (IOException e) {
            throw new ConfigException("--config", "cannot read " + path + ": " + e);
        }
    }

    private static void flatten(String prefix, JsonNode node, Path path, Map<Setting<?>, JsonNode> raw,
            Map<Setting<?>, String> sources) throws ConfigException {
        for (Iterator<Map.Entry<String, JsonNode>> fields = node.fields(); fields.hasNext(); ) {
            Map.Entry<String, JsonNode> field = fields.next();
            String key = prefix.isEmpty() ? field.getKey() : prefix + "." + field.getKey();
            Setting<?> setting = Settings.BY_KEY.get(key);
            if (setting != null) {
                raw.put(setting, field.getValue());
                sources.put(setting, "file " + path);
            } else if (field.getValue().isObject() && isPrefixOfAKey(key)) {
                flatten(key, field.getValue(), path, raw, sources);
            } else {
                throw new ConfigException(key, "unknown key in " + path + suggestion(key));
            }
        }
    }

    private static JsonNode fromText(Setting<?> setting, String text) throws ConfigException {
        if (!setting.structured()) {
            return TextNode.valueOf(text);
        }
        try {
            JsonNode node = YAML.readTree(text);
            return node == null || node.isMissingNode() ? com.fasterxml.jackson.databind.node.NullNode.instance
                    : node;
        } catch (JsonProcessingException e) {
            throw new ConfigException(setting.key(), "is not valid YAML: " + e.getOriginalMessage());
        }
    }

    private static boolean isPrefixOfAKey(String prefix) {
        return Settings.BY_KEY.keySet().stream().anyMatch(k -> k.startsWith(prefix + "."));
    }

    private static boolean isKnownEnv(String name) {
        return Settings.ALL.stream().anyMatch(s -> s.envName().equals(name));
    }

    private static boolean isKubernetesServiceLink(String name) {
        return name.contains("_SERVICE_") || name.contains("_PORT");
    }

    private static String suggestion(String key) {
        return Settings.BY_KEY.keySet().stream()
                .min(Comparator.comparingInt(k -> distance(k.toLowerCase(), key.toLowerCase())))
                .filter(k -> distance(k.toLowerCase(), key.toLowerCase()) <= 3)
                .map(k -> " (did you mean " + k + "?)")
                .orElse("");
    }

    /** Levenshtein distance, for "did you mean". */
    private static int distance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                current[j] = Math.min(Math.min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }
}
