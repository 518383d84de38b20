package io.kvbroker.cli;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.daemon.Lifecycle;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Runs the daemon until SIGTERM or SIGINT.
 *
 * <p>Design note: the shutdown hook stops the daemon within its drain timeout and then halts with 0 for a clean
 * stop or 1 when a component failed or overran, so an orchestrator can tell the two apart (the JVM's own default
 * would be 143 either way).
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Run the kvbroker daemon until SIGTERM or SIGINT.")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ConfigOptions configOptions;

    @Option(names = "--simulate", paramLabel = "N",
            description = "Run N simulated vLLM engines on loopback beside the daemon and ingest them "
                    + "(the same as --set simulate.engines=N).")
    Integer simulate;

    @Override
    public Integer call() throws Exception {
        if (simulate != null) {
            configOptions.overrides.put("simulate.engines", simulate.toString());
        }
        BrokerConfig config = configOptions.loadOrReport();
        if (config == null) {
            return KvbrokerCommand.EXIT_CONFIG;
        }
        LogSetup.apply(config);
        Logger log = LoggerFactory.getLogger(ServeCommand.class);
        config.warnings().forEach(log::warn);

        BrokerDaemon daemon = new BrokerDaemon(config);
        Thread hook = new Thread(() -> {
            Lifecycle.StopReport report = daemon.stop();
            LogSetup.flush();
            Runtime.getRuntime().halt(report.clean() ? 0 : 1);
        }, "shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            daemon.start();
        } catch (Exception e) {
            log.error("start-up failed: {}", e.toString(), e);
            Runtime.getRuntime().removeShutdownHook(hook);
            return 1;
        }
        daemon.awaitStopped();
        return 0;
    }
}
