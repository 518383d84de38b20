package io.kvbroker.testing;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.sim.Simulator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/** Starts a real broker in this JVM subscribed to a simulator's engines, as the integration tests need one. */
public final class SimulatedBrokers {
    private SimulatedBrokers() {
    }

    /**
     * Writes a YAML of the simulator's engines (with their replay endpoints) to {@code folder/NAME.yaml} and starts a
     * daemon on it: gRPC on an ephemeral loopback port, no metrics server, no status lines, no journal unless
     * {@code settings} (command-line style, which win) give one. {@code moreEngines} (from {@link #engine}) follow
     * the simulator's, so their ids come after its engines'. The caller stops it.
     */
    public static BrokerDaemon start(Simulator simulator, Path folder, String name, Map<String, String> settings,
            String... moreEngines) throws Exception {
        StringBuilder yaml = new StringBuilder(enginesYaml(simulator));
        for (String engine : moreEngines) {
            yaml.append("    - ").append(engine).append('\n');
        }
        Path file = folder.resolve(name + ".yaml");
        Files.writeString(file, yaml);
        Map<String, String> flags = new HashMap<>(Map.of("grpc.port", "0", "grpc.host", "127.0.0.1",
                "log.statusIntervalMs", "3600000", "journal.dir", "", "metrics.port", "0"));
        flags.putAll(settings);
        BrokerConfig config = ConfigLoader.load(Optional.of(file), Map.of(), flags);
        BrokerDaemon daemon = new BrokerDaemon(config);
        try {
            daemon.start();
        } catch (Exception e) {
            daemon.stop();
            throw e;
        }
        return daemon;
    }

    /** One static engine entry, as YAML flow, for an engine a test plays itself on raw sockets. */
    public static String engine(String pod, String model, String topic, String endpoint, String replayEndpoint) {
        return "{pod: " + pod + ", model: '" + model + "', endpoint: '" + endpoint + "', replayEndpoint: '"
                + replayEndpoint + "', topic: '" + topic + "'}";
    }

    /** The simulator's engines, with their replay endpoints, as a YAML configuration's {@code engines.static}. */
    public static String enginesYaml(Simulator simulator) {
        StringBuilder yaml = new StringBuilder("engines:\n  static:\n");
        simulator.specs().forEach(spec -> yaml.append("    - ").append(engine(spec.key().pod(), spec.model(),
                spec.topic(), spec.endpoint().toString(), spec.replayEndpoint().orElseThrow().toString()))
                .append('\n'));
        return yaml.toString();
    }
}
