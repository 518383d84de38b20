package io.kvbroker.config;

import io.kvbroker.engine.EngineSpec;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Every configuration key kvbroker reads, with its default and meaning: the single source of the configuration
 * table in the README and of {@code kvbroker config --describe}.
 */
public final class Settings {
    private Settings() {
    }

    public static final Setting<String> BROKER_NAME = new Setting<>("broker.name", "string", "", "\"\"",
            "Name of this replica in logs; empty means the host name (the pod name in a StatefulSet).", false,
            ValueParsers.text(true));

    public static final Setting<Integer> SHUTDOWN_DRAIN_TIMEOUT_MS = new Setting<>("shutdown.drainTimeoutMs",
            "integer, ms", 10_000, "10000",
            "On SIGTERM, how long components get in all to drain and close before the process exits anyway.",
            false, ValueParsers.intRange(0, 600_000));

    public static final Setting<String> LOG_LEVEL = new Setting<>("log.level", "one of error, warn, info, debug, trace",
            "info", "info", "Level of kvbroker's own loggers (libraries stay at warn).", false,
            ValueParsers.oneOf(List.of("error", "warn", "info", "debug", "trace")));

    public static final Setting<String> LOG_FORMAT = new Setting<>("log.format", "plain or json", "plain", "plain",
            "Log line format on standard output: plain text, or one JSON object per line for log collectors.",
            false, ValueParsers.oneOf(List.of("plain", "json")));

    public static final Setting<List<EngineSpec>> ENGINES_STATIC = new Setting<>("engines.static",
            "list of engines", List.of(), "[]",
            "Engines to subscribe to: each with pod, model, endpoint (the engine's PUB, tcp://host:port), and"
                    + " optionally replayEndpoint, topic and dataParallelSize (ranks 0..n-1 at port+rank).",
            true, new StaticEnginesParser());

    /** All settings, in the order of the configuration table. */
    public static final List<Setting<?>> ALL = List.of(BROKER_NAME, SHUTDOWN_DRAIN_TIMEOUT_MS, LOG_LEVEL,
            LOG_FORMAT, ENGINES_STATIC);

    static final Map<String, Setting<?>> BY_KEY = ALL.stream()
            .collect(Collectors.toUnmodifiableMap(Setting::key, Function.identity()));

    /** The configuration table as Markdown, as the README shows it. */
    public static String markdownTable() {
        StringBuilder table = new StringBuilder();
        table.append("| key | environment variable | type | default | meaning |\n");
        table.append("|---|---|---|---|---|\n");
        for (Setting<?> setting : ALL) {
            table.append("| `").append(setting.key()).append("` | `").append(setting.envName()).append("` | ")
                    .append(setting.type()).append(" | `").append(setting.defaultText()).append("` | ")
                    .append(setting.description()).append(" |\n");
        }
        return table.toString();
    }
}
