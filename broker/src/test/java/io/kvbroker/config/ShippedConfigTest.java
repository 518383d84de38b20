package io.kvbroker.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The documented defaults (conf/broker.yaml, the README's table) stay the code's defaults. */
class ShippedConfigTest {
    private static Path projectRoot() {
        String root = System.getProperty("kvbroker.projectRoot");
        Path path = root != null ? Path.of(root) : Path.of("..");
        return Files.exists(path.resolve("conf/broker.yaml")) ? path : Path.of("..");
    }

    @Test
    void shippedBrokerYamlHoldsExactlyTheEmbeddedDefaults() throws Exception {
        Path file = projectRoot().resolve("conf/broker.yaml");
        BrokerConfig shipped = ConfigLoader.load(Optional.of(file), Map.of(), Map.of());
        BrokerConfig defaults = BrokerConfig.defaults();
        for (Setting<?> setting : Settings.ALL) {
            assertThat(shipped.get(setting)).as(setting.key()).isEqualTo(defaults.get(setting));
            assertThat(shipped.source(setting)).as(setting.key() + " is written in conf/broker.yaml")
                    .startsWith("file ");
        }
    }

    @Test
    void readmeConfigurationTableIsTheGeneratedOne() throws Exception {
        String readme = Files.readString(projectRoot().resolve("README.md"));
        assertThat(readme).contains(Settings.markdownTable());
    }
}
