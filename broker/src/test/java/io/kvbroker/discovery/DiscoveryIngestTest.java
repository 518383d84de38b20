package io.kvbroker.discovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.apply.BatchApplier;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineState;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.IngestSettings;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * Discovery driving real ingest: simulated engines over ZeroMQ join, leave and restart while the broker runs, and
 * the index follows (a removed engine's blocks are cleared, a restarted one starts a new incarnation).
 */
class DiscoveryIngestTest {

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        Await.until(what, Duration.ofSeconds(30), condition);
    }

    private static Set<DiscoveredEngine> engines(List<EngineSpec> specs, String instance) {
        Set<DiscoveredEngine> set = new LinkedHashSet<>();
        specs.forEach(spec -> set.add(new DiscoveredEngine(spec, instance)));
        return set;
    }

    @Test
    void engineSetChangesLiveWithoutRestart() throws Exception {
        EngineRegistry registry = new EngineRegistry();
        BlockIndex index = new BlockIndex(id -> registry.entry(id).spec().model(), 16,
                new PrefixScorer.Weights(1, 0.8, 0.5, 0.4));
        ZmqIngest ingest = new ZmqIngest(registry, BatchApplier.indexOnly(index),
                IngestSettings.from(BrokerConfig.defaults()));
        AtomicLong clock = new AtomicLong();
        EngineTarget target = EngineTarget.of(ingest::add, ingest::remove, ingest::restart);
        EngineDiscovery discovery = new EngineDiscovery(registry, target, List.of(), 1_000, clock::get);
        try (Simulator simulator = new Simulator(Simulator.fleet(3, 5), Ports.freeRange(6), 50).start()) {
            List<EngineSpec> specs = simulator.specs();
            discovery.report("kubernetes", engines(specs.subList(0, 2), "c1"));
            ingest.start();
            await("two engines live", () -> ingest.streams().size() == 2
                    && ingest.streams().stream().allMatch(s -> s.state() == EngineState.LIVE));

            discovery.report("kubernetes", engines(specs, "c1"));
            int third = registry.find(specs.get(2).key()).orElseThrow().id();
            await("the third engine live", () -> stream(ingest, third) != null
                    && stream(ingest, third).state() == EngineState.LIVE && index.blocksOf(third) > 0);

            int first = registry.find(specs.get(0).key()).orElseThrow().id();
            await("the first engine holds blocks", () -> index.blocksOf(first) > 0);
            discovery.report("kubernetes", engines(specs.subList(1, 3), "c1"));
            clock.addAndGet(1_000);
            discovery.reconcile(clock.get());
            // The stream turns REMOVED just before the index is told, so wait for both.
            await("the first engine removed and its blocks cleared",
                    () -> stream(ingest, first).state() == EngineState.REMOVED && index.blocksOf(first) == 0);
            assertThat(registry.find(new EngineKey(specs.get(0).key().pod(), 0))).isEmpty();

            int second = registry.find(specs.get(1).key()).orElseThrow().id();
            Set<DiscoveredEngine> restarted = engines(specs.subList(2, 3), "c1");
            restarted.addAll(engines(specs.subList(1, 2), "c2"));
            discovery.report("kubernetes", restarted);
            // The index hears of the restart on the ingest thread; wait until it holds the new incarnation's blocks.
            await("the second engine restarted and live again", () -> stream(ingest, second).incarnation() == 2
                    && index.engineSummary(second).incarnation() == 2 && index.blocksOf(second) > 0
                    && stream(ingest, second).state() == EngineState.LIVE);
            assertThat(stream(ingest, second).counters().get(Counter.RESTARTS_SIGNALLED)).isOne();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    private static EngineStream stream(ZmqIngest ingest, int engineId) {
        return ingest.stream(engineId);
    }
}
