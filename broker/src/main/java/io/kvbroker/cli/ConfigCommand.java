package io.kvbroker.cli;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Setting;
import io.kvbroker.config.Settings;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Validates the configuration and prints each key's effective value and where it came from. */
@Command(name = "config", mixinStandardHelpOptions = true,
        description = "Validate the configuration and print every key's value and source, or describe the keys.")
final class ConfigCommand implements Callable<Integer> {
    @Mixin
    ConfigOptions configOptions;

    @Option(names = "--describe", description = "Print the table of keys (Markdown) instead.")
    boolean describe;

    @Override
    public Integer call() {
        if (describe) {
            System.out.print(Settings.markdownTable());
            return 0;
        }
        BrokerConfig config = configOptions.loadOrReport();
        if (config == null) {
            return KvbrokerCommand.EXIT_CONFIG;
        }
        config.warnings().forEach(w -> System.err.println("warning: " + w));
        for (Setting<?> setting : Settings.ALL) {
            System.out.printf("%-28s %-40s (%s)%n", setting.key(), config.get(setting), config.source(setting));
        }
        return 0;
    }
}
