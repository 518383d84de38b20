package io.kvbroker.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvbroker.config.ConfigLoader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** A listening port another process holds stops start-up naming the setting, the port and the host. */
class ListenPortsTest {

    /**
     * The ingest port said "Errno 48" (JeroMQ's BSD error number; Linux's is 98) without naming the setting; the
     * gRPC port named it after Netty's wording. Each now says which setting, which port, on which host.
     */
    @Test
    void aPortInUseStopsStartUpNamingItsSettingPortAndHost() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"))) {
            int port = taken.getLocalPort();
            for (String key : List.of("ingest.listen.port", "grpc.port", "metrics.port")) {
                Map<String, String> flags = new HashMap<>(Map.of("grpc.port", "0", "grpc.host", "127.0.0.1",
                        "metrics.port", "0", "metrics.host", "127.0.0.1", "ingest.listen.host", "127.0.0.1",
                        "ingest.listen.maxRanks", "1", "journal.dir", "", "log.statusIntervalMs", "3600000"));
                flags.put(key, String.valueOf(port));
                BrokerDaemon daemon = new BrokerDaemon(ConfigLoader.load(Optional.empty(), Map.of(), flags));
                try {
                    assertThatThrownBy(daemon::start).as(key)
                            .hasMessage(key + ": port " + port + " on 127.0.0.1 is already in use");
                } finally {
                    assertThat(daemon.stop().clean()).as(key + ": what started was stopped").isTrue();
                }
            }
        }
    }
}
