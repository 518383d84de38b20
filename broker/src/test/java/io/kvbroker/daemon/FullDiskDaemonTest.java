package io.kvbroker.daemon;

import io.kvbroker.ingest.EngineStream;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.JournalFaults;
import io.kvbroker.lifecycle.Lifecycle;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.MetricsText;
import io.kvbroker.testing.Ports;
import io.kvbroker.testing.SimulatedBrokers;
import io.kvbroker.testing.SmallDisk;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A whole daemon whose journal is on a real small disk (a 64 MiB tmpfs) while two simulated engines publish: when the
 * disk fills, {@code /-/ready} says why it is not ready and {@code /-/healthy} stays 200; once space is freed the
 * journal recovers by itself, the probe is ready again and the engines catch up; and a stop while the disk is full
 * finishes within the drain timeout. The log holds each engine's batches once, in order, with no hole. Where a tmpfs
 * cannot be mounted (not root), RocksDB's SST space limit fills the "disk" instead: the same checks, though it fails
 * RocksDB more gently than a full write-ahead log does.
 */
class FullDiskDaemonTest {
    private static final int ENGINES = 2;
    private static final Duration WAIT = Duration.ofSeconds(40);

    @TempDir
    Path dir;

    private final HttpClient http = HttpClient.newHttpClient();
    private final int metricsPort = Ports.freeRange(1);

    @Test
    void aFullDiskMakesTheDaemonNotReadyUntilItRecoversByItselfAndStopsWithinTheDrainTimeout() throws Exception {
        SmallDisk tmpfs = SmallDisk.mount(dir.resolve("disk"), 64 * 1024).orElse(null);
        List<SimulatedEngine.Options> fleet = Simulator.fleet(ENGINES, 16).stream()
                .map(o -> o.withBufferSteps(60_000)).toList();
        try (SmallDisk disk = tmpfs; Simulator simulator = new Simulator(fleet, 0, 200).start()) {
            Path journalDir = (disk == null ? dir : disk.root()).resolve("journal");
            BrokerDaemon daemon = SimulatedBrokers.start(simulator, dir, "full-disk", Map.of(
                    "journal.dir", journalDir.toString(), "metrics.port", String.valueOf(metricsPort),
                    "metrics.host", "127.0.0.1", "shutdown.drainTimeoutMs", "5000"));
            Lifecycle.StopReport stopped;
            long recoveredMs;
            long stopMs;
            try {
                Await.until("every engine's stream", WAIT, () -> daemon.ingest().streams().size() == ENGINES);
                List<EngineStream> streams = fleet.stream().map(o -> daemon.ingest().stream(daemon.registry().live()
                        .stream().filter(e -> e.spec().key().pod().equals(o.pod())).findFirst().orElseThrow().id()))
                        .toList();
                awaitCaughtUp("the engines' history applied", simulator, streams);
                assertThat(get("/-/ready").statusCode()).isEqualTo(200);
                Journal journal = daemon.journal().orElseThrow();

                fill(disk, journal);
                Await.until("journal writes stall", WAIT, () -> journal.stalledSinceMs() != 0);
                HttpResponse<String> notReady = get("/-/ready");
                assertThat(notReady.statusCode()).isEqualTo(503);
                assertThat(notReady.body()).contains("journal writes failing");
                assertThat(get("/-/healthy").statusCode()).as("a full disk is no reason to restart").isEqualTo(200);
                assertThat(metric("kvbroker_journal_stalled")).isEqualTo(1);

                free(disk, journal);
                long freed = System.nanoTime();
                Await.until("journal writes resume", WAIT, () -> journal.stalledSinceMs() == 0);
                recoveredMs = (System.nanoTime() - freed) / 1_000_000;
                Await.until("/-/ready answers 200 again", WAIT, () -> get("/-/ready").statusCode() == 200);
                awaitCaughtUp("what was published meanwhile applied", simulator, streams);
                assertThat(metric("kvbroker_journal_stalled")).isZero();
                assertThat(metric("kvbroker_journal_reopens_total")).as("recovered by a reopen").isEqualTo(1);

                fill(disk, journal);
                Await.until("journal writes stall again", WAIT, () -> journal.stalledSinceMs() != 0);
                Await.until("ingest waits behind the journal", WAIT, () -> {
                    long applied = streams.get(0).cursor();
                    return simulator.call(engines -> engines.get(0).nextSequence()) - 1 > applied + 200;
                });
            } finally {
                long stopping = System.nanoTime();
                stopped = daemon.stop();
                stopMs = (System.nanoTime() - stopping) / 1_000_000;
            }
            assertThat(stopped.timedOut()).as("components past the drain timeout").isEmpty();
            if (disk != null) {
                disk.free();
            }
            assertEachEngineLoggedOnceInOrderWithoutHole(journalDir);
            System.out.printf("full disk (%s): writes resumed %d ms after space was freed; stopped while full in %d ms"
                    + " (drain timeout 5000 ms)%n", disk == null ? "space limit" : "tmpfs", recoveredMs, stopMs);
        }
    }

    /** Fills the tmpfs, or where none could be mounted makes the journal's SST space limit bite. */
    private static void fill(SmallDisk disk, Journal journal) throws java.io.IOException {
        if (disk != null) {
            disk.fill();
        } else {
            JournalFaults.limitDisk(journal, true);
        }
    }

    private static void free(SmallDisk disk, Journal journal) throws java.io.IOException {
        if (disk != null) {
            disk.free();
        } else {
            JournalFaults.limitDisk(journal, false);
        }
    }

    /** Each engine's records in the closed journal are its batches 0..n, once, in order, and its cursor is n. */
    private static void assertEachEngineLoggedOnceInOrderWithoutHole(Path journalDir) {
        Map<String, List<Long>> logged = new HashMap<>();
        try (Journal journal = Journal.open(journalDir, Journal.Sync.INTERVAL)) {
            journal.forEachRecord(1, (sequence, record) -> logged.computeIfAbsent(record.engine(),
                    name -> new ArrayList<>()).add(record.sequence()));
            Map<String, Journal.Cursor> cursors = journal.cursors();
            assertThat(logged).hasSize(ENGINES);
            logged.forEach((engine, sequences) -> {
                long last = cursors.get(engine).sequence();
                assertThat(sequences).as(engine).containsExactlyElementsOf(LongStream.rangeClosed(0, last).boxed()
                        .toList());
            });
        }
    }

    private static void awaitCaughtUp(String what, Simulator simulator, List<EngineStream> streams)
            throws InterruptedException {
        long[] published = simulator.call(engines -> engines.stream().mapToLong(SimulatedEngine::nextSequence)
                .toArray());
        Await.until(what, WAIT, () -> IntStream.range(0, ENGINES).allMatch(i -> streams.get(i).cursor()
                >= published[i] - 1));
    }

    private double metric(String name) {
        return MetricsText.sum(MetricsText.parse(get("/metrics").body()), name, series -> true);
    }

    private HttpResponse<String> get(String path) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + path)).build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new AssertionError("GET " + path + ": " + e, e);
        }
    }
}
