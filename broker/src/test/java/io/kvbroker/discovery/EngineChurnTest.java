package io.kvbroker.discovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.config.ConfigLoader;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.ingest.EngineState;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import java.io.File;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pods replaced over and over, as under autoscaling or rolling updates: each round, discovery loses the engines
 * (removed and cleared) and finds new pods at the same addresses, which connect, replay and go live. Hundreds of
 * engines pass through a daemon with a journal; its sockets, threads and heap must not grow with them beyond what a
 * removed engine's id keeps by design.
 */
@Tag("slow")
class EngineChurnTest {
    private static final int ENGINES = 4;
    private static final int ROUNDS = 100;
    private static final int WARM_UP_ROUNDS = 10;

    @Test
    void replacedPodsLeaveNoSocketsThreadsOrStateBehind(@TempDir Path dir) throws Exception {
        // The engines keep 200 batches for replay, full within the warm-up: with the fleet's 10,000 their buffers
        // grew all through the measured rounds, in this JVM's heap, and read as growth per replaced engine (more the
        // slower the machine: 5.5 KB an engine alone, 19.7 KB in a loaded full suite).
        List<SimulatedEngine.Options> fleet = Simulator.fleet(ENGINES, 17).stream()
                .map(options -> options.withBufferSteps(200)).toList();
        try (Simulator simulator = new Simulator(fleet, Ports.freeRange(2 * ENGINES), 100).start()) {
            BrokerDaemon daemon = new BrokerDaemon(ConfigLoader.load(Optional.empty(), Map.of(), Map.of(
                    // A small Watch ring, full within the warm-up: it is bounded, but would read as growth.
                    "discovery.removeGraceMs", "0", "watch.bufferBatches", "1024",
                    "journal.dir", dir.resolve("journal").toString(), "grpc.port", "0", "grpc.host", "127.0.0.1",
                    "metrics.port", "0", "log.statusIntervalMs", "3600000")));
            daemon.start();
            try {
                Sample baseline = null;
                List<Integer> previous = List.of();
                for (int round = 0; round < ROUNDS; round++) {
                    if (round == WARM_UP_ROUNDS) {
                        baseline = Sample.take();
                    }
                    daemon.discovery().report("churn", Set.of());
                    List<Integer> gone = previous;
                    Await.until("round " + round + ": the last pods removed and cleared", Duration.ofSeconds(30),
                            () -> gone.stream().allMatch(id -> daemon.registry().entry(id).removed()
                                    && daemon.ingest().stream(id).state() == EngineState.REMOVED
                                    && daemon.index().blocksOf(id) == 0));
                    Set<DiscoveredEngine> pods = new LinkedHashSet<>();
                    for (EngineSpec spec : simulator.specs()) {
                        EngineSpec replaced = new EngineSpec(new EngineKey(spec.key().pod() + "-r" + round, 0),
                                spec.model(), spec.endpoint(), spec.replayEndpoint(), spec.topic());
                        pods.add(new DiscoveredEngine(replaced, "c" + round));
                    }
                    daemon.discovery().report("churn", pods);
                    List<Integer> ids = new ArrayList<>();
                    for (DiscoveredEngine pod : pods) {
                        ids.add(daemon.registry().find(pod.spec().key()).orElseThrow().id());
                    }
                    Await.until("round " + round + ": the new pods live", Duration.ofSeconds(30),
                            () -> ids.stream().allMatch(id -> {
                                EngineStream stream = daemon.ingest().stream(id);
                                return stream != null && stream.state() == EngineState.LIVE && stream.cursor() >= 0;
                            }));
                    previous = ids;
                }
                Sample end = Sample.take();
                int churned = (ROUNDS - WARM_UP_ROUNDS) * ENGINES;
                double heapPerEngine = (end.heapBytes - baseline.heapBytes) / (double) churned;
                System.out.printf("engine churn: %d engines replaced after warm-up; open files %d -> %d, threads %d"
                        + " -> %d, heap after GC %.1f -> %.1f MB (%.0f bytes per replaced engine)%n", churned,
                        baseline.openFiles, end.openFiles, baseline.threads, end.threads, baseline.heapBytes / 1e6,
                        end.heapBytes / 1e6, heapPerEngine);
                assertThat(end.openFiles).as("open files").isLessThanOrEqualTo(baseline.openFiles + 16);
                assertThat(end.threads).as("threads").isLessThanOrEqualTo(baseline.threads + 4);
                // A removed engine keeps its id's registry entry, stream state and counters (ids are never reused,
                // and ListEngines reports removed engines): about 1.5 KB. Before the stream let go of its closed
                // sockets on removal, they kept JeroMQ's pipes, buffers and options: about 29 KB per engine.
                assertThat(heapPerEngine).as("heap kept per replaced engine, bytes").isLessThan(16_384);
            } finally {
                daemon.stop();
            }
        }
    }

    /** Open files, live threads and heap in use after a full GC, of this JVM. */
    private record Sample(long openFiles, int threads, long heapBytes) {
        static Sample take() throws InterruptedException {
            MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
            long heap = Long.MAX_VALUE;
            // The least of a few collections: a GC finishing reference processing late would read high once.
            for (int i = 0; i < 3; i++) {
                System.gc();
                // No state to await: the collector's reference processing has no signal, so it is given time.
                Thread.sleep(100);
                heap = Math.min(heap, memory.getHeapMemoryUsage().getUsed());
            }
            String[] fds = new File("/proc/self/fd").list();
            int threads = ManagementFactory.getThreadMXBean().getThreadCount();
            return new Sample(fds == null ? -1 : fds.length, threads, heap);
        }
    }
}
