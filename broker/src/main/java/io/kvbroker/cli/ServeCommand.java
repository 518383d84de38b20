package io.kvbroker.cli;

import io.grpc.StatusRuntimeException;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.lifecycle.Lifecycle;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.sim.Simulator;
import io.kvbroker.sim.Workload;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
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
        BrokerConfig config = configOptions.loadOrReport(Runtime.getRuntime().maxMemory());
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
        if (config.get(Settings.SIMULATE_ENGINES) > 0) {
            Thread sample = new Thread(() -> showSampleScore(daemon.grpcPort(), log), "sample-score");
            sample.setDaemon(true);
            sample.start();
        }
        daemon.awaitStopped();
        return 0;
    }

    /**
     * With simulated engines, shows a real Score over the gRPC API once the engines have published the shared
     * system prompt: what {@code kvbroker score --sample-prompt} prints for the first simulated model.
     */
    private static void showSampleScore(int port, Logger log) {
        String model = Simulator.fleet(1, 1).get(0).model();
        ScoreRequest request = ScoreRequest.newBuilder().setModel(model)
                .addAllTokenIds(Arrays.stream(Workload.sharedSystemPrompt(model)).boxed().toList()).addTokenIds(0)
                .setTopK(10).build();
        // A generous deadline: the first call of a fresh JVM on a busy machine pays for class loading and JIT.
        try (KvIndexClient client = KvIndexClient.builder(List.of("127.0.0.1:" + port))
                .deadline(Duration.ofSeconds(10)).build()) {
            // A few seconds of traffic first, so that several engines have cached the shared prompt.
            Thread.sleep(3_000);
            for (int attempt = 0; attempt < 60; attempt++) {
                ScoreResponse response;
                try {
                    response = client.score(request);
                } catch (StatusRuntimeException e) {
                    // A slow first call (class loading on a busy machine) is not worth giving up the sample for.
                    log.debug("sample Score attempt failed: {}", e.getStatus());
                    Thread.sleep(500);
                    continue;
                }
                if (response.getEngineIdsCount() > 0 || attempt == 59) {
                    ByteArrayOutputStream text = new ByteArrayOutputStream();
                    ScoreCommand.print(response, EnginesCommand.names(client.listEngines()), false,
                            new PrintStream(text, true, StandardCharsets.UTF_8));
                    log.info("sample Score over gRPC at 127.0.0.1:{}, as `scripts/kvbroker score --model {}"
                            + " --sample-prompt` prints it:\n{}", port, model,
                            text.toString(StandardCharsets.UTF_8).stripTrailing());
                    return;
                }
                Thread.sleep(500);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            log.warn("sample Score over gRPC failed: {}", e.toString());
        }
    }
}
