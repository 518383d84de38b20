package io.kvbroker.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.kvbroker.apply.BatchApplier;
import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.discovery.EngineDiscovery;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.IngestSettings;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ListEnginesRequest;
import io.kvbroker.proto.v1.ListEnginesResponse;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.MetricsText;
import io.kvbroker.testing.Ports;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Scrapes /metrics over HTTP from a running broker fed by simulated engines over ZeroMQ, queried and watched over a
 * real gRPC channel.
 */
class MetricsScrapeTest {
    private static final int ENGINES = 3;
    private static final String SERVICE = "service=\"kvbroker.v1.KvIndexService\"";
    private final HttpClient http = HttpClient.newHttpClient();

    private HttpResponse<String> get(int port, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Every sample of the text exposition, by series ({@code name{labels}}). */
    private Map<String, Double> scrape(int port) throws Exception {
        HttpResponse<String> response = get(port, "/metrics");
        assertThat(response.statusCode()).isEqualTo(200);
        return MetricsText.parse(response.body());
    }

    private static double sum(Map<String, Double> samples, String name, Predicate<String> series) {
        return MetricsText.sum(samples, name, series);
    }

    private static long count(Map<String, Double> samples, String name) {
        return samples.keySet().stream().filter(k -> k.startsWith(name + "{")).count();
    }

    /** A broker over {@link #ENGINES} simulated engines, with metrics on {@code metricsPort} and gRPC on a free port. */
    private static BrokerDaemon simulatedBroker(int metricsPort, int stepsPerSecond, Map<String, String> settings)
            throws Exception {
        Map<String, String> flags = new HashMap<>(Map.of(
                "simulate.engines", String.valueOf(ENGINES),
                "simulate.basePort", String.valueOf(Ports.freeRange(2 * ENGINES)),
                "simulate.stepsPerSecond", String.valueOf(stepsPerSecond),
                "metrics.port", String.valueOf(metricsPort),
                "metrics.host", "127.0.0.1",
                "grpc.port", "0",
                "grpc.host", "127.0.0.1",
                "log.statusIntervalMs", "3600000"));
        flags.putAll(settings);
        BrokerDaemon daemon = new BrokerDaemon(ConfigLoader.load(Optional.empty(), Map.of(), flags));
        daemon.start();
        return daemon;
    }

    @Test
    void keySeriesMoveWhileSimulatedEnginesPublish() throws Exception {
        int metricsPort = Ports.freeRange(1);
        // No journal: its series must then be absent, and a default journal would land in the working folder.
        BrokerDaemon daemon = simulatedBroker(metricsPort, 50, Map.of("journal.dir", ""));
        try {
            assertThat(get(metricsPort, "/-/healthy").statusCode()).isEqualTo(200);
            assertThat(get(metricsPort, "/-/ready").statusCode()).isEqualTo(200);
            Map<String, Double> first = awaitScrape(metricsPort, s -> sum(s, "kvbroker_engine_state",
                    k -> k.contains("state=\"live\"")) == ENGINES
                    && sum(s, "kvbroker_index_residencies", k -> true) > 0);
            assertThat(count(first, "kvbroker_engine_batches_total")).isEqualTo(ENGINES);
            double batches = sum(first, "kvbroker_engine_batches_total", k -> true);
            double bytes = sum(first, "kvbroker_engine_received_bytes_total", k -> true);
            Map<String, Double> later = awaitScrape(metricsPort,
                    s -> sum(s, "kvbroker_engine_batches_total", k -> true) > batches);
            assertThat(sum(later, "kvbroker_engine_received_bytes_total", k -> true)).isGreaterThan(bytes);
            assertThat(sum(later, "kvbroker_engine_block_events_total", k -> true)).isPositive();
            assertThat(sum(later, "kvbroker_engine_blocks", k -> k.contains("medium=\"gpu\""))).isPositive();
            assertThat(count(later, "kvbroker_engine_lag_seconds")).isEqualTo(ENGINES);
            assertThat(count(later, "kvbroker_engine_last_message_timestamp_seconds")).isEqualTo(ENGINES);
            assertThat(count(later, "kvbroker_engine_gaps_total")).isEqualTo(ENGINES);
            assertThat(count(later, "kvbroker_engine_voids_total")).isEqualTo(ENGINES);
            assertThat(count(later, "kvbroker_engine_replays_total")).isEqualTo(ENGINES);
            assertThat(count(later, "kvbroker_engine_restarts_total")).isEqualTo(3L * ENGINES);
            assertThat(later).containsKey("kvbroker_discovery_reported_engines{source=\"static\"}");
            assertThat(later.get("kvbroker_discovery_engines")).isEqualTo(ENGINES);
            assertThat(later.get("kvbroker_index_memory_bytes")).isPositive();
            assertThat(later.get("kvbroker_index_stored_blocks_total")).isPositive();
            assertThat(later.keySet()).anyMatch(k -> k.startsWith("jvm_memory_used_bytes{"));
            assertThat(later.keySet()).anyMatch(k -> k.startsWith("kvbroker_engine_batches_total{engine=\"sim-0/0\""));
            assertThat(later.get("kvbroker_index_evicted_blocks_total")).isZero();
            assertThat(later.get("kvbroker_index_truncated_engines")).isZero();
            assertThat(later).doesNotContainKey("kvbroker_index_quota_blocks");
            assertThat(later.keySet()).noneMatch(k -> k.startsWith("kvbroker_journal_"));
        } finally {
            daemon.stop();
        }
    }

    @Test
    void grpcCallsAndWatchStreamsAreCountedByMethodAndCode() throws Exception {
        int metricsPort = Ports.freeRange(1);
        BrokerDaemon daemon = simulatedBroker(metricsPort, 50, Map.of("journal.dir", ""));
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", daemon.grpcPort()).usePlaintext()
                .build();
        try {
            KvIndexServiceGrpc.KvIndexServiceBlockingStub stub = KvIndexServiceGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(30, TimeUnit.SECONDS);
            awaitScrape(metricsPort, s -> sum(s, "kvbroker_index_residencies", k -> true) > 0);
            ListEnginesResponse engines = stub.listEngines(ListEnginesRequest.getDefaultInstance());
            assertThat(engines.getEnginesCount()).isEqualTo(ENGINES);
            ScoreRequest.Builder score = ScoreRequest.newBuilder().setModel(engines.getEngines(0).getModel());
            for (int t = 0; t < 64; t++) {
                score.addTokenIds(t);
            }
            stub.score(score.build());
            assertThat(org.assertj.core.api.Assertions.catchThrowableOfType(StatusRuntimeException.class,
                    () -> stub.score(ScoreRequest.newBuilder().setModel("m").build())).getStatus().getCode())
                    .isEqualTo(Status.Code.INVALID_ARGUMENT);

            Map<String, Double> watching;
            io.grpc.Context.CancellableContext call = io.grpc.Context.current().withCancellation();
            try {
                watching = call.call(() -> {
                    Iterator<WatchResponse> stream = stub.watch(WatchRequest.getDefaultInstance());
                    for (int i = 0; i < ENGINES + 2; i++) {
                        stream.next();
                    }
                    return awaitScrape(metricsPort, s -> s.getOrDefault("kvbroker_watch_open_watchers", 0.0) == 1
                            && s.getOrDefault("kvbroker_watch_sent_batches_total", 0.0) > 0);
                });
            } finally {
                call.cancel(null);
            }
            assertThat(watching.get("kvbroker_watch_opened_watchers_total")).isEqualTo(1);
            assertThat(watching.get("kvbroker_watch_sent_snapshots_total")).isEqualTo(ENGINES);
            assertThat(watching.get("kvbroker_watch_dropped_watchers_total")).isZero();
            assertThat(watching.get("kvbroker_watch_buffer_entries")).isPositive();
            assertThat(watching.get("kvbroker_watch_buffer_capacity_entries")).isEqualTo(65_536);
            assertThat(watching.get("kvbroker_watch_next_sequence")).isGreaterThan(1);
            assertThat(watching).containsKey("kvbroker_watch_resumed_engines_total");

            // The cancelled stream ends as CANCELLED, counted once; streams get no latency histogram.
            Map<String, Double> after = awaitScrape(metricsPort, s -> s.getOrDefault(
                    "kvbroker_watch_open_watchers", 1.0) == 0 && sum(s, "kvbroker_grpc_calls_total",
                    k -> k.contains("method=\"Watch\"") && k.contains(SERVICE)) == 1);
            assertThat(sum(after, "kvbroker_grpc_calls_total", k -> k.contains("method=\"Watch\"")
                    && k.contains("code=\"CANCELLED\""))).isEqualTo(1);
            assertThat(sum(after, "kvbroker_grpc_calls_total", k -> k.contains("method=\"ListEngines\"")
                    && k.contains("code=\"OK\"") && k.contains(SERVICE))).isEqualTo(1);
            assertThat(sum(after, "kvbroker_grpc_calls_total", k -> k.contains("method=\"Score\"")
                    && k.contains("code=\"OK\""))).isEqualTo(1);
            assertThat(sum(after, "kvbroker_grpc_calls_total", k -> k.contains("method=\"Score\"")
                    && k.contains("code=\"INVALID_ARGUMENT\""))).isEqualTo(1);
            assertThat(sum(after, "kvbroker_grpc_call_duration_seconds_count", k -> k.contains("method=\"Score\"")))
                    .isEqualTo(2);
            assertThat(sum(after, "kvbroker_grpc_call_duration_seconds_bucket", k -> k.contains("method=\"Score\"")
                    && k.contains("code=\"OK\"") && k.contains("le=\"+Inf\""))).isEqualTo(1);
            assertThat(after.keySet()).noneMatch(k -> k.startsWith("kvbroker_grpc_call_duration_seconds")
                    && k.contains("method=\"Watch\""));
        } finally {
            channel.shutdownNow();
            channel.awaitTermination(5, TimeUnit.SECONDS);
            daemon.stop();
        }
    }

    @Test
    void journalAndEvictionSeriesMoveWithAJournalAndASmallBudget(@TempDir Path dir) throws Exception {
        int metricsPort = Ports.freeRange(1);
        // 1 MiB over 16 shares: a quota of 1,024 blocks an engine, the smallest allowed, which simulated engines
        // (2,000 GPU and 4,000 CPU blocks each) outgrow within seconds.
        BrokerDaemon daemon = simulatedBroker(metricsPort, 200, Map.of(
                "journal.dir", dir.resolve("journal").toString(),
                "journal.checkpoint.everyBatches", "100",
                "journal.retention.maxBatches", "500",
                "index.budgetMb", "1",
                "index.budgetShares", "16"));
        try {
            Map<String, Double> first = awaitScrape(metricsPort,
                    s -> s.getOrDefault("kvbroker_journal_write_seconds_count", 0.0) > 0);
            double next = first.get("kvbroker_journal_next_sequence");
            Map<String, Double> later = awaitScrape(metricsPort,
                    s -> s.getOrDefault("kvbroker_journal_next_sequence", 0.0) > next
                            && s.getOrDefault("kvbroker_journal_trimmed_records_total", 0.0) > 0
                            && s.getOrDefault("kvbroker_index_evicted_blocks_total", 0.0) > 0
                            && s.getOrDefault("kvbroker_index_truncated_engines", 0.0) > 0
                            && sum(s, "kvbroker_engine_truncated", k -> true) > 0);
            assertThat(later.get("kvbroker_journal_log_bytes")).isPositive();
            assertThat(later.get("kvbroker_journal_checkpoints_total")).isPositive();
            assertThat(later.get("kvbroker_journal_write_failures_total")).isZero();
            assertThat(later.get("kvbroker_journal_first_sequence")).isGreaterThan(1);
            assertThat(later.get("kvbroker_journal_records")).isEqualTo(
                    later.get("kvbroker_journal_next_sequence") - later.get("kvbroker_journal_first_sequence"));
            assertThat(later.get("kvbroker_journal_trim_floor_sequence"))
                    .isGreaterThanOrEqualTo(later.get("kvbroker_journal_first_sequence"));
            assertThat(later).containsKey("kvbroker_journal_trims_held_total");
            assertThat(later.get("kvbroker_journal_write_seconds_bucket{le=\"+Inf\"}"))
                    .isEqualTo(later.get("kvbroker_journal_write_seconds_count"));
            assertThat(later.get("kvbroker_index_quota_blocks")).isEqualTo(1024);
            // Evicted blocks the engine later removes leave the gauge, so only its presence is certain.
            assertThat(count(later, "kvbroker_engine_evicted_blocks")).isEqualTo(ENGINES);
            assertThat(later).containsKey("kvbroker_index_restored_blocks_total")
                    .containsKey("kvbroker_index_forgotten_blocks_total");
        } finally {
            daemon.stop();
        }
    }

    @Test
    void gapsVoidsAndDecodeErrorsFromAMisbehavingEngineShowPerEngine() throws Exception {
        int metricsPort = Ports.freeRange(1);
        int enginePort = Ports.freeRange(1);
        BrokerConfig config = ConfigLoader.load(Optional.empty(), Map.of(), Map.of(
                "engines.static", "[{pod: bad, model: m, endpoint: 'tcp://127.0.0.1:" + enginePort + "'}]",
                "metrics.port", String.valueOf(metricsPort), "metrics.host", "127.0.0.1",
                "log.statusIntervalMs", "3600000", "grpc.port", "0",
                // No journal: the tests watch metrics, and a default journal would land in the working folder.
                "journal.dir", ""));
        BrokerDaemon daemon = new BrokerDaemon(config);
        KvEventEncoder encoder = new KvEventEncoder();
        byte[] valid = encoder.encode(new KvEventBatch(1.0, 0, List.of(AllBlocksCleared.ALL), 0, 0),
                KvEventEncoder.Form.MAP);
        String engine = "{engine=\"bad/0\",model=\"m\"}";
        try (ZContext context = new ZContext(); ZMQ.Socket pub = context.createSocket(SocketType.PUB)) {
            pub.bind("tcp://127.0.0.1:" + enginePort);
            daemon.start();
            // A PUB drops what it sends before the subscriber has joined: publish until the first batch is applied.
            long[] sequence = {0};
            Map<String, Double> before = awaitScrape(metricsPort, samples -> {
                send(pub, sequence[0]++, valid);
                return samples.getOrDefault("kvbroker_engine_batches_total" + engine, 0.0) > 0;
            });
            // Batches sent before the subscriber joined count as lost at first contact; only the 3 below are new.
            double lostAtFirstContact = before.get("kvbroker_engine_lost_batches_total" + engine);
            // A 3-element batch whose timestamp is 0xc1, the one byte that is no msgpack format; then 3 batches lost.
            send(pub, sequence[0]++, new byte[] {(byte) 0x93, (byte) 0xc1, (byte) 0xc0, (byte) 0xc0});
            sequence[0] += 3;
            send(pub, sequence[0], valid);
            Map<String, Double> samples = awaitScrape(metricsPort,
                    s -> s.getOrDefault("kvbroker_engine_voids_total" + engine, 0.0) == 1);
            assertThat(samples).containsEntry("kvbroker_engine_gaps_total" + engine, 1.0)
                    .containsEntry("kvbroker_engine_lost_batches_total" + engine, lostAtFirstContact + 3)
                    .containsEntry("kvbroker_engine_decode_errors_total" + engine, 1.0)
                    .containsEntry("kvbroker_engine_decode_errors_by_reason_total{engine=\"bad/0\",model=\"m\","
                            + "reason=\"invalid_format\"}", 1.0);
        } finally {
            daemon.stop();
        }
    }

    private static void send(ZMQ.Socket pub, long sequence, byte[] payload) {
        pub.sendMore(new byte[0]);
        pub.sendMore(WireFrames.sequenceFrame(sequence));
        pub.send(payload);
    }

    private Map<String, Double> awaitScrape(int port, Predicate<Map<String, Double>> condition) throws Exception {
        java.util.concurrent.atomic.AtomicReference<Map<String, Double>> last = new java.util.concurrent.atomic
                .AtomicReference<>();
        Await.until("a scrape that meets the condition", Duration.ofSeconds(30), () -> {
            try {
                last.set(scrape(port));
            } catch (Exception e) {
                throw new AssertionError("scrape failed", e);
            }
            return condition.test(last.get());
        }, () -> "last scrape: " + last.get());
        return last.get();
    }

    /** A metrics server over an empty index, without a daemon. */
    private static MetricsServer bareServer(int port, BooleanSupplier healthy, BooleanSupplier ready) {
        EngineRegistry registry = new EngineRegistry();
        BlockIndex index = new BlockIndex(id -> "m", 16, new io.kvbroker.core.PrefixScorer.Weights(1, 1, 1, 1));
        ZmqIngest ingest = new ZmqIngest(registry, BatchApplier.indexOnly(index),
                IngestSettings.from(BrokerConfig.defaults()));
        EngineDiscovery discovery = new EngineDiscovery(registry, null, List.of(), 0, System::currentTimeMillis);
        return new MetricsServer("127.0.0.1", port, ingest, registry, index, discovery, healthy, ready);
    }

    @Test
    void probesAnswerWhatTheDaemonSays() throws Exception {
        int port = Ports.freeRange(1);
        java.util.concurrent.atomic.AtomicBoolean healthy = new java.util.concurrent.atomic.AtomicBoolean(true);
        MetricsServer server = bareServer(port, healthy::get, () -> false);
        server.start();
        try {
            assertThat(get(port, "/-/ready").statusCode()).isEqualTo(503);
            assertThat(get(port, "/-/healthy").statusCode()).isEqualTo(200);
            healthy.set(false);
            assertThat(get(port, "/-/healthy").statusCode()).isEqualTo(503);
            assertThat(get(port, "/nothing").statusCode()).isEqualTo(404);
            assertThat(scrape(port)).containsEntry("kvbroker_index_residencies", 0.0);
        } finally {
            server.stop(Duration.ofSeconds(1));
        }
    }

    /**
     * Clients that open a connection, send part of a request head and never finish it: before, ten of them made every
     * probe time out (the JDK server's backlog of 3, no deadline for a request). Twice the connection cap of them here.
     */
    @Test
    void probesAnswerWhileSlowClientsHoldUnfinishedRequests() throws Exception {
        int port = Ports.freeRange(1);
        MetricsServer server = bareServer(port, () -> true, () -> true);
        server.start();
        List<Socket> slow = new ArrayList<>();
        try {
            for (int i = 0; i < 2 * BoundedHttpServer.MAX_CONNECTIONS; i++) {
                Socket socket = new Socket("127.0.0.1", port);
                socket.getOutputStream().write("GET /-/healthy HTTP/1.1\r\nHost: x\r\n".getBytes(
                        StandardCharsets.US_ASCII));
                socket.getOutputStream().flush();
                slow.add(socket);
            }
            for (int i = 0; i < 3; i++) {
                assertThat(get(port, "/-/healthy").statusCode()).isEqualTo(200);
                assertThat(get(port, "/-/ready").statusCode()).isEqualTo(200);
            }
            assertThat(scrape(port)).containsEntry("kvbroker_index_residencies", 0.0);
            for (Socket socket : slow) {
                // Past the cap at once, the rest at the request deadline; a generous bound for a busy machine.
                socket.setSoTimeout(60_000);
                assertThat(closedByServer(socket)).isTrue();
            }
        } finally {
            for (Socket socket : slow) {
                socket.close();
            }
            server.stop(Duration.ofSeconds(1));
        }
    }

    /** Reads until the server closes (true) or the read times out (false); a reset counts as closed. */
    private static boolean closedByServer(Socket socket) throws IOException {
        try {
            while (socket.getInputStream().read() != -1) {
                // Whatever the server sent before closing.
            }
            return true;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (SocketException e) {
            return true;
        }
    }

    @Test
    void portZeroMeansNoMetricsServer() throws Exception {
        BrokerConfig config = ConfigLoader.load(Optional.empty(), Map.of(), Map.of("metrics.port", "0"));
        assertThat(new BrokerDaemon(config).metrics()).isEmpty();
    }
}
