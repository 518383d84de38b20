package io.kvbroker.client;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.grpc.GrpcServer;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.QueryLimits;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The gateway client against real broker servers: fail-over on UNAVAILABLE across addresses, and deadlines. */
class KvIndexClientTest {
    private final List<GrpcServer> servers = new ArrayList<>();

    /** A broker query server on an ephemeral port over an empty index; ready or still starting. */
    private GrpcServer server(Readiness readiness) throws Exception {
        EngineRegistry registry = new EngineRegistry();
        registry.register(new EngineSpec(new EngineKey("pod-0", 0), "m", Endpoint.parse("tcp://127.0.0.1:20000"),
                Optional.empty(), ""));
        BlockIndex index = new BlockIndex(id -> "m", 16, PrefixScorer.Weights.DEFAULT);
        QueryLimits limits = new QueryLimits(1_000, 10, 10, 1_000, 1_000);
        GrpcServer server = new GrpcServer("127.0.0.1", 0, 1 << 20, new IndexQueries(index, registry, id -> null,
                new PendingHints(System::currentTimeMillis, 10), System::currentTimeMillis), limits, readiness);
        server.start();
        servers.add(server);
        return server;
    }

    private static Readiness ready(boolean value) {
        Readiness readiness = new Readiness();
        readiness.set(value);
        return readiness;
    }

    private static String address(GrpcServer server) {
        return "127.0.0.1:" + server.port();
    }

    private static final ScoreRequest SCORE = ScoreRequest.newBuilder().setModel("m").addTokenIds(1).build();

    @AfterEach
    void stop() throws Exception {
        for (GrpcServer server : servers) {
            server.stop(Duration.ofSeconds(2));
        }
    }

    @Test
    void failsOverFromAnUnreachableAddressAndSticksToTheOneThatAnswered() throws Exception {
        int closedPort;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = probe.getLocalPort();
        }
        GrpcServer live = server(ready(true));
        try (KvIndexClient client = KvIndexClient.builder(List.of("127.0.0.1:" + closedPort, address(live)))
                .deadline(Duration.ofSeconds(10)).build()) {
            assertThat(client.listEngines().getGranularity()).isEqualTo(16);
            assertThat(client.currentAddress()).isEqualTo(address(live));
            assertThat(client.score(SCORE).getEngineIdsCount()).isZero();
        }
    }

    @Test
    void retriesAReplicaThatIsStartingOnTheNextAndGivesUpAfterItsAttempts() throws Exception {
        GrpcServer starting = server(ready(false));
        GrpcServer live = server(ready(true));
        try (KvIndexClient client = KvIndexClient.builder(List.of(address(starting), address(live)))
                .deadline(Duration.ofSeconds(10)).build()) {
            assertThat(client.score(SCORE).getScoredChunks()).isZero();
            assertThat(client.currentAddress()).isEqualTo(address(live));
        }
        try (KvIndexClient client = KvIndexClient.builder(List.of(address(starting), address(live)))
                .deadline(Duration.ofSeconds(10)).maxAttempts(1).build()) {
            assertThatThrownBy(() -> client.score(SCORE)).isInstanceOfSatisfying(StatusRuntimeException.class,
                    e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
        }
    }

    @Test
    void movesToAnotherReplicaWhenItsReplicaStops() throws Exception {
        GrpcServer first = server(ready(true));
        GrpcServer second = server(ready(true));
        try (KvIndexClient client = KvIndexClient.builder(List.of(address(first), address(second)))
                .deadline(Duration.ofSeconds(10)).build()) {
            client.score(SCORE);
            assertThat(client.currentAddress()).isEqualTo(address(first));
            first.stop(Duration.ofSeconds(2));
            client.score(SCORE);
            assertThat(client.currentAddress()).isEqualTo(address(second));
        }
    }

    @Test
    void refusedRequestsAreNotRetried() throws Exception {
        GrpcServer live = server(ready(true));
        GrpcServer other = server(ready(true));
        try (KvIndexClient client = KvIndexClient.builder(List.of(address(live), address(other)))
                .deadline(Duration.ofSeconds(10)).build()) {
            assertThatThrownBy(() -> client.score(ScoreRequest.newBuilder().setModel("m").build()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e ->
                            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
            assertThatThrownBy(() -> client.score(SCORE.toBuilder().setModel("llama").build()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e ->
                            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
            assertThat(client.currentAddress()).as("not failed over").isEqualTo(address(live));
        }
    }

    @Test
    void aReplicaThatNeverAnswersEndsInDeadlineExceeded() throws Exception {
        // Accepts TCP connections and never speaks HTTP/2: the call can only end by its deadline.
        try (ServerSocket silent = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            List<Socket> accepted = new ArrayList<>();
            Thread acceptor = new Thread(() -> {
                try {
                    while (true) {
                        accepted.add(silent.accept());
                    }
                } catch (IOException closed) {
                    // The test is over.
                }
            });
            acceptor.setDaemon(true);
            acceptor.start();
            try (KvIndexClient client = KvIndexClient.builder(List.of("127.0.0.1:" + silent.getLocalPort()))
                    .deadline(Duration.ofMillis(300)).build()) {
                assertThatThrownBy(client::listEngines).isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
            }
        }
    }
}
