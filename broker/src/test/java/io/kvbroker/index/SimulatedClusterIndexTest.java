package io.kvbroker.index;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.ingest.IngestSettings;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The simulated cluster (LRU evictions, offload tier, LoRA, hybrid groups, repeats, clears) over real ZeroMQ feeds
 * the index end to end; every Score equals the reference model's, fed the same batches.
 */
@Tag("slow")
class SimulatedClusterIndexTest {

    @Test
    void scoresOverTheSimulatedClusterMatchTheReference() throws Exception {
        EngineRegistry registry = new EngineRegistry();
        BlockIndex index = new BlockIndex(id -> registry.entry(id).spec().model(), 16, PrefixScorer.Weights.DEFAULT);
        ReferenceIndex reference = new ReferenceIndex(16, id -> registry.entry(id).spec().model());
        ZmqIngest ingest = new ZmqIngest(registry, new ReferenceTee(index, reference),
                IngestSettings.from(BrokerConfig.defaults()));
        try (Simulator simulator = new Simulator(Simulator.fleet(12, 3), 0, 100).start()) {
            for (EngineSpec spec : simulator.specs()) {
                registry.register(spec);
            }
            ingest.start();
            Await.until("2,000 blocks removed", Duration.ofSeconds(60),
                    () -> index.stats().counts().removedBlocks >= 2_000);
            simulator.setStepping(false);
            // Quiet: wait until every engine's last published batch is applied.
            Await.until("every published batch applied", Duration.ofSeconds(60), () -> simulator.call(engines -> {
                for (int i = 0; i < engines.size(); i++) {
                    if (ingest.stream(i).cursor() != engines.get(i).nextSequence() - 1) {
                        return false;
                    }
                }
                return true;
            }));
            IndexStats stats = index.stats();
            assertThat(stats.counts().removedBlocks).as("evictions happened").isGreaterThanOrEqualTo(2_000);
            assertThat(stats.counts().skippedOtherGroups).as("hybrid groups were seen and kept out").isPositive();
            int compared = 0;
            int matched = 0;
            for (String model : List.of("sim/llama-8b", "sim/qwen-7b")) {
                List<int[]> prompts = simulator.call(engines -> {
                    List<int[]> list = new ArrayList<>();
                    for (int p = 0; p < 8; p++) {
                        int[] system = engines.get(model.equals("sim/llama-8b") ? 0 : 1).systemPrompt(p);
                        list.add(java.util.Arrays.copyOf(system, system.length + 1));
                    }
                    return list;
                });
                for (int[] prompt : prompts) {
                    List<ReferenceIndex.Score> expected;
                    synchronized (reference) {
                        expected = reference.score(model, null, prompt);
                    }
                    List<ReferenceIndex.Score> actual = new ArrayList<>();
                    for (PrefixScore s : index.score(model, null, prompt, null, null, 0, 0)) {
                        actual.add(new ReferenceIndex.Score(s.engineId(), s.gpuBlocks(), s.offloadBlocks(), s.score()));
                    }
                    actual.sort(Comparator.comparingInt(ReferenceIndex.Score::engineId));
                    assertThat(actual).as("%s prompt of %d tokens", model, prompt.length).isEqualTo(expected);
                    compared++;
                    matched += actual.isEmpty() ? 0 : 1;
                }
            }
            assertThat(compared).isEqualTo(16);
            assertThat(matched).as("shared system prompts are found on engines").isPositive();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }
}
