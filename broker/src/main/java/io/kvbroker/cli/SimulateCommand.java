package io.kvbroker.cli;

import io.kvbroker.engine.EngineSpec;
import io.kvbroker.sim.Simulator;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Runs simulated vLLM engines on loopback until SIGTERM, and prints the {@code engines.static} entries that point a
 * broker at them: for trying kvbroker, or any other consumer of vLLM's KV events, without GPUs.
 */
@Command(name = "simulate", mixinStandardHelpOptions = true,
        description = "Run simulated vLLM engines (PUB + replay ROUTER) on loopback until stopped.")
final class SimulateCommand implements Callable<Integer> {
    @Option(names = "--engines", paramLabel = "N", defaultValue = "4", description = "Engines to run (default 4).")
    int engines;

    @Option(names = "--base-port", paramLabel = "PORT", defaultValue = "16000",
            description = "Engine i publishes on PORT+2i and answers replay on PORT+2i+1 (default 16000).")
    int basePort;

    @Option(names = "--steps-per-second", paramLabel = "S", defaultValue = "20",
            description = "Batches each engine publishes per second (default 20).")
    int stepsPerSecond;

    @Option(names = "--no-replay", description = "Print the entries without replayEndpoint, as vLLM runs by default "
            + "(the engines still answer replay requests).")
    boolean noReplay;

    @Override
    public Integer call() throws InterruptedException {
        if (engines < 1 || engines > 2_000 || basePort < 1024 || basePort + 2 * engines > 65_535
                || stepsPerSecond < 1) {
            System.err.println("kvbroker simulate: --engines 1..2000, --base-port from 1024 with room for 2 ports per"
                    + " engine, --steps-per-second >= 1");
            return KvbrokerCommand.EXIT_CONFIG;
        }
        Simulator simulator = new Simulator(Simulator.fleet(engines, 1), basePort, stepsPerSecond).start();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            simulator.close();
            stopped.countDown();
        }, "simulate-shutdown"));
        StringBuilder yaml = new StringBuilder("engines:\n  static:\n");
        for (EngineSpec spec : simulator.specs(!noReplay)) {
            yaml.append("    - {pod: ").append(spec.key().pod()).append(", model: ").append(spec.model())
                    .append(", endpoint: \"").append(spec.endpoint()).append('"');
            spec.replayEndpoint().ifPresent(replay -> yaml.append(", replayEndpoint: \"").append(replay).append('"'));
            yaml.append(", topic: \"").append(spec.topic()).append("\"}\n");
        }
        System.out.print(yaml);
        System.out.flush();
        stopped.await();
        return 0;
    }
}
