package io.kvbroker.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.cli.KvbrokerCommand;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.sim.Workload;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.MetricsText;
import io.kvbroker.testing.Ports;
import io.kvbroker.testing.SimulatedBrokers;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon as a separate JVM near its heap limit ({@code -Xmx64m}, G1, exiting on OutOfMemoryError as the shipped
 * image does): under an index budget the heap holds, fed until its engines hold four times what the budget lets the
 * index keep, it keeps the index within its quotas, answers Score and stops cleanly; a budget the heap cannot hold
 * stops start-up naming {@code index.budgetMb}.
 *
 * <p>Design note: this load is more than the heap holds unbudgeted: without a budget, or with one above the heap,
 * the same daemon and engines ran out of memory at about 400,000 residencies, 30 to 35 s in; and with a 16 MiB budget
 * too, rebuilding the index's key table (old and new arrays at once), which is why start-up allows at most
 * (64 - 32) / 3 = 10 MiB here ({@code IndexBudget.maxBudgetMb}). Watch's ring is cut to 4,096 batches: at its
 * default of 65,536 it holds about 30 MB of these batches, outside any budget, and with it this heap ran out 15 s in
 * with the index at 11 MiB.
 */
@Tag("slow")
class HeapLimitProcessTest {
    private static final int HEAP_MB = 64;
    private static final int BUDGET_MB = 8;
    private static final int ENGINES = 8;
    private static final long MB = 1024 * 1024;

    @TempDir
    Path work;

    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void underABudgetTheHeapHoldsTheIndexKeepsItsQuotasAndTheDaemonServesThroughout() throws Exception {
        List<SimulatedEngine.Options> fleet = new ArrayList<>();
        for (int i = 0; i < ENGINES; i++) {
            String model = i % 2 == 0 ? "sim/llama-8b" : "sim/qwen-7b";
            // No clears: caches only grow, to 60,000 GPU and 60,000 CPU blocks, 960,000 in all.
            fleet.add(new SimulatedEngine.Options("heap-" + i, 0, model, "kv@heap-" + i + "@" + model,
                    i % 3 == 0 ? KvEventEncoder.Form.ARRAY : KvEventEncoder.Form.MAP, 5_000, 1_000,
                    new Workload.Shape(60_000, 60_000, 8, 2, false, 8, 0, 0.02), 900 + i));
        }
        int metricsPort = Ports.freeRange(1);
        int grpcPort = Ports.freeRange(1);
        Path config = work.resolve("broker.yaml");
        try (Simulator simulator = new Simulator(fleet, 0, 1_000)) {
            simulator.setStepping(false);
            simulator.start();
            Files.writeString(config, SimulatedBrokers.enginesYaml(simulator));
            Process broker = launch("--config", config.toString(), "--set", "index.budgetMb=" + BUDGET_MB,
                    "--set", "index.budgetShares=" + ENGINES, "--set", "watch.bufferBatches=4096",
                    "--set", "grpc.port=" + grpcPort, "--set", "metrics.port=" + metricsPort);
            try {
                awaitReady(broker, metricsPort);
                simulator.setStepping(true);
                Map<String, Double> first = scrape(metricsPort);
                double quota = first.get("kvbroker_index_quota_blocks");
                assertThat(quota).as("each engine's quota: 8 MiB / 8 shares / 64 B").isEqualTo(16_384);
                double mostResidencies = 0;
                double mostIndexBytes = 0;
                double mostHeapBytes = 0;
                Map<String, Double> s = first;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
                // Until the engines hold (stored less removed) four times what the budget keeps.
                while (held(s) < 4 * ENGINES * quota) {
                    assertThat(broker.isAlive()).as("the broker runs; %s", tail()).isTrue();
                    assertThat(System.nanoTime()).as("engines fill their caches; at %.0f blocks", held(s))
                            .isLessThan(deadline);
                    // Pacing, not waiting: the peaks below are sampled every half second while the caches fill.
                    Thread.sleep(500);
                    s = scrape(metricsPort);
                    mostResidencies = Math.max(mostResidencies, s.get("kvbroker_index_residencies"));
                    mostIndexBytes = Math.max(mostIndexBytes, s.get("kvbroker_index_memory_bytes"));
                    mostHeapBytes = Math.max(mostHeapBytes, heapUsed(s));
                }
                ScoreResponse score;
                try (KvIndexClient client = KvIndexClient.builder(List.of("127.0.0.1:" + grpcPort))
                        .deadline(Duration.ofSeconds(30)).build()) {
                    ScoreRequest.Builder request = ScoreRequest.newBuilder().setModel("sim/llama-8b");
                    for (int token : Workload.sharedSystemPrompt("sim/llama-8b")) {
                        request.addTokenIds(token);
                    }
                    score = client.score(request.build());
                }
                Map<String, Double> last = scrape(metricsPort);
                System.out.printf("heap limit: -Xmx%dm, budget %d MiB (quota %.0f blocks x %d engines); engines hold"
                        + " %.0f blocks; residencies at most %.0f, now %.0f; evicted %.0f; index estimate at most"
                        + " %.1f MiB; heap used at most %.1f MiB; %.0f batches; Score found %d engines%n", HEAP_MB,
                        BUDGET_MB, quota, ENGINES, held(last), mostResidencies,
                        last.get("kvbroker_index_residencies"), last.get("kvbroker_index_evicted_blocks_total"),
                        mostIndexBytes / MB, mostHeapBytes / MB,
                        MetricsText.sum(last, "kvbroker_engine_batches_total", k -> true), score.getEngineIdsCount());

                assertThat(mostResidencies).as("residencies, every scrape").isLessThanOrEqualTo(ENGINES * quota);
                assertThat(last.get("kvbroker_index_evicted_blocks_total")).as("evicted blocks")
                        .isGreaterThan(ENGINES * quota);
                assertThat(last.get("kvbroker_index_truncated_engines")).isEqualTo(ENGINES);
                assertThat(MetricsText.sum(last, "kvbroker_engine_voids_total", k -> true)).as("voids").isZero();
                assertThat(MetricsText.sum(last, "kvbroker_engine_lost_batches_total", k -> true)).as("lost")
                        .isZero();
                assertThat(score.getEngineIdsList()).as("llama engines holding the shared system prompt")
                        .isNotEmpty().allMatch(id -> id % 2 == 0);
                assertThat(get(metricsPort, "/-/ready")).isEqualTo(200);
                assertThat(get(metricsPort, "/-/healthy")).isEqualTo(200);
                simulator.setStepping(false);
                assertThat(broker.toHandle().destroy()).isTrue();
                assertThat(broker.waitFor(60, TimeUnit.SECONDS)).as("stopped after SIGTERM").isTrue();
                assertThat(broker.exitValue()).as("a clean stop; %s", tail()).isZero();
                assertThat(Files.readString(work.resolve("broker.log"))).doesNotContain("OutOfMemoryError");
            } finally {
                broker.destroyForcibly();
                broker.waitFor(60, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void aBudgetTheHeapCannotHoldStopsStartUpNamingTheKey() throws Exception {
        Process broker = launch("--set", "index.budgetMb=64", "--set", "grpc.port=0", "--set", "metrics.port=0");
        assertThat(broker.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(broker.exitValue()).as(tail()).isEqualTo(2);
        assertThat(tail()).contains("index.budgetMb: 64 MiB does not fit a heap of 64 MiB", "at most 10 here",
                "at least 224 MiB of heap");
    }

    /** Blocks the engines hold now, by the index's counters: stored less removed, evicted or not. */
    private static double held(Map<String, Double> samples) {
        return samples.get("kvbroker_index_stored_blocks_total") - samples.get("kvbroker_index_removed_blocks_total");
    }

    private static double heapUsed(Map<String, Double> samples) {
        return MetricsText.sum(samples, "jvm_memory_used_bytes", k -> k.contains("area=\"heap\""));
    }

    /** kvbroker serve in a JVM of {@link #HEAP_MB}, flags as the shipped image's, output to broker.log. */
    private Process launch(String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xmx" + HEAP_MB + "m", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-cp",
                System.getProperty("java.class.path"), KvbrokerCommand.class.getName(), "serve",
                "--set", "journal.dir=" + work.resolve("journal"), "--set", "journal.sync=none",
                "--set", "grpc.host=127.0.0.1", "--set", "metrics.host=127.0.0.1",
                "--set", "log.statusIntervalMs=5000"));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().keySet().removeIf(name -> name.startsWith("KVBROKER_"));
        builder.redirectErrorStream(true);
        builder.redirectOutput(work.resolve("broker.log").toFile());
        return builder.start();
    }

    /** The end of the broker's output, for failure messages. */
    private String tail() throws IOException {
        String log = Files.readString(work.resolve("broker.log"), StandardCharsets.UTF_8);
        return log.substring(Math.max(0, log.length() - 4_000));
    }

    private int get(int port, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    private Map<String, Double> scrape(int port) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                + "/metrics")).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        return MetricsText.parse(response.body());
    }

    private void awaitReady(Process broker, int port) throws Exception {
        Await.until("the broker ready", Duration.ofSeconds(60), () -> {
            try {
                assertThat(broker.isAlive()).as("the broker runs, waiting for it to be ready; %s", tail()).isTrue();
                return get(port, "/-/ready") == 200;
            } catch (IOException starting) {
                // Not listening yet.
                return false;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
    }
}
