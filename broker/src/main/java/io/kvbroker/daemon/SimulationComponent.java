package io.kvbroker.daemon;

import io.kvbroker.engine.EngineSpec;
import io.kvbroker.lifecycle.Component;
import io.kvbroker.sim.Simulator;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** Runs simulated engines beside the daemon ({@code simulate.engines}), started before ingest subscribes to them. */
final class SimulationComponent implements Component {
    private final int engines;
    private final int basePort;
    private final int stepsPerSecond;
    private final boolean replay;
    private Simulator simulator;

    SimulationComponent(int engines, int basePort, int stepsPerSecond, boolean replay) {
        this.engines = engines;
        this.basePort = basePort;
        this.stepsPerSecond = stepsPerSecond;
        this.replay = replay;
    }

    @Override
    public String name() {
        return "simulator";
    }

    @Override
    public void start() {
        simulator = new Simulator(Simulator.fleet(engines, 1), basePort, stepsPerSecond).start();
    }

    /** The simulated engines, for the engine catalog; empty before start. */
    List<EngineSpec> specs() {
        return simulator == null ? List.of() : simulator.specs(replay);
    }

    /** A prompt to show a sample Score for: the first engine's model and a system prompt, plus one token. */
    Optional<StatusReporter.Sample> sample() {
        if (simulator == null) {
            return Optional.empty();
        }
        return Optional.of(simulator.call(engines -> {
            int[] system = engines.get(0).systemPrompt(0);
            int[] prompt = java.util.Arrays.copyOf(system, system.length + 1);
            return new StatusReporter.Sample(engines.get(0).options().model(), prompt);
        }));
    }

    @Override
    public void stop(Duration budget) {
        if (simulator != null) {
            simulator.close();
        }
    }
}
