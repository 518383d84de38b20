package io.kvbroker.cli;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.ConfigException;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.config.Settings;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Option;

/** The options every subcommand that reads the configuration shares: a file and key overrides. */
final class ConfigOptions {
    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "YAML configuration file (default: embedded defaults; conf/broker.yaml documents them).")
    Path file;

    @Option(names = {"-s", "--set"}, paramLabel = "KEY=VALUE", mapFallbackValue = "",
            description = "Override one key, after the file and the environment; repeatable. "
                    + "Example: --set shutdown.drainTimeoutMs=5000")
    Map<String, String> overrides = new LinkedHashMap<>();

    /** The validated configuration, or null after printing what is wrong (the caller exits with status 2). */
    BrokerConfig loadOrReport() {
        return loadOrReport(Long.MAX_VALUE);
    }

    /**
     * As {@link #loadOrReport()}, for a daemon in this JVM: also checked against its heap of at most
     * {@code maxHeapBytes} ({@link Settings#checkHeap}).
     */
    BrokerConfig loadOrReport(long maxHeapBytes) {
        try {
            BrokerConfig config = ConfigLoader.load(Optional.ofNullable(file), System.getenv(), overrides);
            Settings.checkHeap(config, maxHeapBytes);
            return config;
        } catch (ConfigException e) {
            System.err.println("kvbroker: configuration error: " + e.getMessage());
            return null;
        }
    }
}
