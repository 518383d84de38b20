package io.kvbroker.index;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.client.KvIndexClient;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.grpc.GrpcServer;
import io.kvbroker.ingest.IngestSettings;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.proto.v1.EngineInfo;
import io.kvbroker.proto.v1.EngineState;
import io.kvbroker.proto.v1.ListEnginesResponse;
import io.kvbroker.proto.v1.LookupRequest;
import io.kvbroker.proto.v1.LookupResponse;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The query API over a real gRPC server on an ephemeral port, fed by simulated engines over real ZeroMQ: Score,
 * Lookup and ListEngines agree with the index and with its reference model fed the same history.
 */
@Tag("slow")
class QueryApiAgreementTest {
    private static final String[] MODELS = {"sim/llama-8b", "sim/qwen-7b"};

    @Test
    void scoreLookupAndListEnginesAgreeWithTheIndexAndTheReference() throws Exception {
        EngineRegistry registry = new EngineRegistry();
        BlockIndex index = new BlockIndex(id -> registry.entry(id).spec().model(), 16, PrefixScorer.Weights.DEFAULT);
        ReferenceIndex reference = new ReferenceIndex(16, id -> registry.entry(id).spec().model());
        ZmqIngest ingest = new ZmqIngest(registry, new ReferenceTee(index, reference),
                IngestSettings.from(BrokerConfig.defaults()));
        Readiness readiness = new Readiness();
        QueryLimits limits = QueryLimits.from(BrokerConfig.defaults());
        GrpcServer server = new GrpcServer("127.0.0.1", 0, 4 << 20, new IndexQueries(index, registry,
                ingest::stream, new PendingHints(System::currentTimeMillis, 1_000), System::currentTimeMillis),
                limits, readiness);
        try (Simulator simulator = new Simulator(Simulator.fleet(6, 7), 0, 100).start()) {
            for (EngineSpec spec : simulator.specs()) {
                registry.register(spec);
            }
            ingest.start();
            server.start();
            readiness.set(true);
            Await.until("500 blocks removed", Duration.ofSeconds(60),
                    () -> index.stats().counts().removedBlocks >= 500);
            simulator.setStepping(false);
            long[] published = simulator.call(engines -> engines.stream().mapToLong(e -> e.nextSequence() - 1)
                    .toArray());
            Await.until("every published batch applied", Duration.ofSeconds(60),
                    () -> Arrays.equals(published, cursors(ingest, published.length)),
                    () -> Arrays.toString(cursors(ingest, published.length)) + " want " + Arrays.toString(published));

            try (KvIndexClient client = KvIndexClient.builder(List.of("127.0.0.1:" + server.port()))
                    .deadline(Duration.ofSeconds(10)).build()) {
                ListEnginesResponse engines = client.listEngines();
                assertThat(engines.getEnginesCount()).isEqualTo(6);
                for (EngineInfo info : engines.getEnginesList()) {
                    BlockIndex.EngineSummary summary = index.engineSummary(info.getEngineId());
                    assertThat(info.getState()).isEqualTo(EngineState.ENGINE_STATE_LIVE);
                    assertThat(info.getAppliedSequence()).isEqualTo(published[info.getEngineId()]);
                    assertThat(info.getLastHeardSequence()).isEqualTo(published[info.getEngineId()]);
                    assertThat(info.getLagBatches()).isZero();
                    assertThat(info.getModel()).isEqualTo(registry.entry(info.getEngineId()).spec().model());
                    assertThat(info.getPod()).isEqualTo(registry.entry(info.getEngineId()).spec().key().pod());
                    assertThat(List.of(info.getBlocks(), info.getGpuBlocks(), info.getCpuBlocks()))
                            .isEqualTo(List.of(summary.blocks(), summary.gpuBlocks(), summary.cpuBlocks()));
                    synchronized (reference) {
                        assertThat(info.getBlocks()).as("blocks of engine %d", info.getEngineId())
                                .isEqualTo(reference.engines.getOrDefault(info.getEngineId(), java.util.Map.of())
                                        .size());
                    }
                }

                ContentKeys keys = new ContentKeys(16);
                int matched = 0;
                for (int m = 0; m < MODELS.length; m++) {
                    String model = MODELS[m];
                    int engine = m;
                    List<int[]> prompts = simulator.call(all -> {
                        List<int[]> list = new ArrayList<>();
                        for (int p = 0; p < 6; p++) {
                            int[] system = all.get(engine).systemPrompt(p);
                            list.add(Arrays.copyOf(system, system.length + 1));
                        }
                        return list;
                    });
                    for (int[] prompt : prompts) {
                        List<ReferenceIndex.Score> expected;
                        synchronized (reference) {
                            expected = reference.score(model, null, prompt);
                        }
                        ScoreResponse byTokens = client.score(ScoreRequest.newBuilder().setModel(model)
                                .addAllTokenIds(Arrays.stream(prompt).boxed().toList()).build());
                        assertThat(rows(byTokens)).as("%s, %d tokens", model, prompt.length).isEqualTo(expected);
                        long[] chain = Arrays.copyOf(keys.promptKeys(model, null, prompt),
                                PrefixScorer.chunksToScore(prompt.length, 16));
                        ScoreResponse byKeys = client.score(ScoreRequest.newBuilder().setModel(model)
                                .addAllContentKeys(Arrays.stream(chain).boxed().toList()).build());
                        assertThat(rows(byKeys)).as("by content keys").isEqualTo(expected);
                        for (int i = 0; i < byTokens.getEngineIdsCount(); i++) {
                            assertThat(byTokens.getAppliedSequences(i))
                                    .isEqualTo(published[byTokens.getEngineIds(i)]);
                            assertThat(byTokens.getStates(i)).isEqualTo(EngineState.ENGINE_STATE_LIVE);
                        }
                        assertThat(byTokens.getScoredChunks()).isEqualTo(chain.length);

                        LookupResponse lookup = client.lookup(LookupRequest.newBuilder()
                                .addAllContentKeys(Arrays.stream(chain).boxed().toList()).build());
                        List<List<BlockIndex.Holder>> inIndex = index.lookupKeys(chain);
                        int next = 0;
                        for (int k = 0; k < chain.length; k++) {
                            List<List<Integer>> holders = new ArrayList<>();
                            for (int h = 0; h < lookup.getHolderCounts(k); h++, next++) {
                                holders.add(List.of(lookup.getEngineIds(next), lookup.getMedia(next)));
                            }
                            holders.sort(Comparator.<List<Integer>>comparingInt(l -> l.get(0))
                                    .thenComparingInt(l -> l.get(1)));
                            synchronized (reference) {
                                assertThat(holders).as("holders of chunk %d", k)
                                        .isEqualTo(reference.holdersOfKey(chain[k]));
                            }
                            assertThat(holders).hasSize(inIndex.get(k).size());
                        }
                        matched += byTokens.getEngineIdsCount() > 0 ? 1 : 0;
                    }
                }
                assertThat(matched).as("shared system prompts are found on engines").isPositive();
            }
        } finally {
            server.stop(Duration.ofSeconds(5));
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    private static long[] cursors(ZmqIngest ingest, int engines) {
        long[] cursors = new long[engines];
        for (int i = 0; i < engines; i++) {
            cursors[i] = ingest.stream(i) == null ? -1 : ingest.stream(i).cursor();
        }
        return cursors;
    }

    /** A Score's rows as the reference model's values, by engine id. */
    private static List<ReferenceIndex.Score> rows(ScoreResponse response) {
        List<ReferenceIndex.Score> rows = new ArrayList<>();
        for (int i = 0; i < response.getEngineIdsCount(); i++) {
            rows.add(new ReferenceIndex.Score(response.getEngineIds(i), response.getGpuBlocks(i),
                    response.getOffloadBlocks(i), response.getScores(i)));
        }
        rows.sort(Comparator.comparingInt(ReferenceIndex.Score::engineId));
        return rows;
    }
}
