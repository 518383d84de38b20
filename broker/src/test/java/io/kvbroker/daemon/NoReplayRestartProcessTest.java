package io.kvbroker.daemon;

import io.grpc.StatusRuntimeException;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEvent;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.lifecycle.Lifecycle;
import io.kvbroker.proto.v1.EngineInfo;
import io.kvbroker.proto.v1.ListEnginesResponse;
import io.kvbroker.proto.v1.LookupRequest;
import io.kvbroker.proto.v1.LookupResponse;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.BrokerProcess;
import io.kvbroker.testing.Ports;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * kvbroker as a separate process with a journal, subscribed to simulated engines configured as vLLM runs by default
 * (no replay endpoint): an engine's process restarts while the broker is connected, while it is disconnected, and
 * while the broker is down (stopped with SIGTERM, or killed with SIGKILL); each time the broker must take the new
 * process's first batch for a new incarnation, never for a duplicate, and its index must then hold exactly what the
 * new process published that the broker could hear: none of the dead process's blocks, and where batches were
 * published unheard, the loss counted and the engine marked {@code history_partial}. A configured topic the engine
 * does not publish applies nothing and shows the topic it does publish.
 *
 * <p>Design note: the simulator does not step on its own; the test publishes each batch itself, and only once the
 * broker's subscription has reached the engine's PUB ({@link SimulatedEngine#subscriptions()}), so what the broker
 * hears is exactly what the test published while it listened. The expected index is rebuilt here from the new
 * process's own buffered batches, from the first one the broker could hear, decoded as the wire does. The tests of
 * restarts while the broker runs share one broker, each with engines of its own (so their order does not matter);
 * the test of restarts while it is down has its own, as it stops and starts it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Tag("slow")
class NoReplayRestartProcessTest {
    private static final long SEED = 151;
    /** Batches the first process publishes (heard) before it restarts. */
    private static final int FIRST = 30;
    /**
     * Batches a new process publishes where the broker cannot hear them: fewer than the old process's, so its first
     * heard batch is at or below the cursor. Exactly as many would look like the old process going on (nothing tells
     * them apart without a replay endpoint), more like a gap in it (voided).
     */
    private static final int LOST = 5;
    /** Batches a new process publishes once the broker hears it. */
    private static final int AFTER = 20;

    @TempDir
    Path work;

    private int launches;

    // One broker for the restarts while it runs, its engines in the test JVM: sim-0 and sim-1 configured as they
    // publish, sim-2 under a topic it does not publish. Each test uses engines of its own.
    private Simulator simulator;
    private BrokerProcess broker;
    private KvIndexClient client;

    @BeforeAll
    void startEnginesAndBroker(@TempDir Path folder) throws Exception {
        simulator = new Simulator(Simulator.fleet(3, SEED), 0, 100);
        simulator.setStepping(false);
        simulator.start();
        int grpcPort = Ports.freeRange(1);
        String wrongTopic = "    - {pod: pod-b, model: '" + simulator.specs(false).get(2).model() + "', endpoint: '"
                + simulator.specs(false).get(2).endpoint() + "', topic: 'kv@pod-b@wrong-model'}\n";
        broker = launch(writeConfig(folder, grpcPort, simulator, List.of(0, 1), wrongTopic));
        client = client(grpcPort);
        for (int e = 0; e < 3; e++) {
            awaitSubscribed(simulator, e, 1);
        }
    }

    @AfterAll
    void stopBrokerAndEngines() throws Exception {
        try (Simulator engines = simulator; BrokerProcess process = broker; KvIndexClient queries = client) {
            if (broker != null) {
                assertThat(broker.terminate()).as("exit code after SIGTERM; %s", broker.tail()).isZero();
            }
        }
    }

    @Test
    void aRestartWhileConnectedIsANewIncarnationHoldingOnlyTheNewProcessesBlocks() throws Exception {
        List<byte[]> dead = firstProcess(simulator, client, broker, 0);
        // The process ends and a new one binds the same port; the broker's SUB reconnects and hears it from its
        // first batch on.
        restartAway(simulator, 0, 0);
        comeBack(simulator, 0);
        awaitSubscribed(simulator, 0, 1);
        publish(simulator, 0, AFTER);
        EngineInfo info = awaitCaughtUp(client, broker, "sim-0", 2, AFTER - 1);
        assertThat(List.of(info.getRestarts(), info.getGaps(), info.getVoids(), info.getUnknownHistoryBatches()))
                .as("restarts, gaps, voids, unknown history batches").isEqualTo(List.of(1L, 0L, 0L, 0L));
        assertThat(info.getHistoryPartial()).as("nothing of the new process was lost").isFalse();
        assertThat(info.getConnections()).as("connections: to the old process and the new").isGreaterThanOrEqualTo(2);
        assertIndexHoldsTheNewProcess(simulator, client, info, 0, 0, dead);
    }

    @Test
    void aRestartWhileDisconnectedIsANewIncarnationHoldingWhatTheBrokerHeardMarkedPartial() throws Exception {
        List<byte[]> dead = firstProcess(simulator, client, broker, 1);
        // The new process publishes LOST batches before its PUB is bound (fewer than the old cursor, so its next
        // batch is a restart by sequence): nobody hears them, and without a replay endpoint they are lost for good.
        // The index can hold only the AFTER batches the broker heard.
        restartAway(simulator, 1, LOST);
        comeBack(simulator, 1);
        awaitSubscribed(simulator, 1, 1);
        publish(simulator, 1, AFTER);
        EngineInfo info = awaitCaughtUp(client, broker, "sim-1", 2, LOST + AFTER - 1);
        assertThat(List.of(info.getRestarts(), info.getGaps(), info.getVoids(), info.getUnknownHistoryBatches()))
                .as("restarts, gaps, voids, unknown history batches").isEqualTo(List.of(1L, 1L, 0L, (long) LOST));
        assertThat(info.getHistoryPartial()).as("the new process's first batches were not heard").isTrue();
        assertIndexHoldsTheNewProcess(simulator, client, info, 1, LOST, dead);
    }

    @Test
    void aConfiguredTopicTheEngineDoesNotPublishAppliesNothingAndShowsTheTopicSeen() throws Exception {
        publish(simulator, 2, 10);
        EngineInfo[] info = new EngineInfo[1];
        Await.until("pod-b's mismatched messages counted", Duration.ofSeconds(60), () -> {
            info[0] = row(client, "pod-b");
            return info[0] != null && info[0].getTopicMismatches() >= 10;
        });
        assertThat(info[0].getTopicMismatches()).as("messages dropped").isEqualTo(10);
        assertThat(info[0].getTopic()).isEqualTo("kv@pod-b@wrong-model");
        assertThat(info[0].getTopicSeen()).isEqualTo(simulator.call(all -> all.get(2).options().topic()))
                .isEqualTo("kv@sim-2@sim/llama-8b");
        assertThat(List.of(info[0].getBlocks(), info[0].getAppliedSequence(), info[0].getBatches()))
                .as("blocks, applied sequence, batches").isEqualTo(List.of(0L, -1L, 0L));
        assertThat(info[0].getReplayEndpoint()).isEmpty();
    }

    @Test
    void aRestartWhileTheBrokerIsDownIsFoundFromItsJournalAfterSigtermAndAfterSigkill() throws Exception {
        // Engines and a broker of this test's own, as it stops and starts the broker.
        try (Simulator simulator = new Simulator(Simulator.fleet(3, SEED), 0, 100)) {
            simulator.setStepping(false);
            simulator.start();
            int grpcPort = Ports.freeRange(1);
            Path config = writeConfig(work, grpcPort, simulator, List.of(0, 1, 2), "");
            List<List<byte[]>> old = new ArrayList<>();
            try (BrokerProcess broker = launch(config); KvIndexClient client = client(grpcPort)) {
                for (int e = 0; e < 3; e++) {
                    awaitSubscribed(simulator, e, 1);
                }
                for (int e = 0; e < 3; e++) {
                    old.add(firstProcess(simulator, client, broker, e));
                }
                assertThat(broker.terminate()).as(broker.tail()).isZero();
            }
            // Down after SIGTERM: engine 0's new process publishes LOST batches before the broker is back, engine 1's
            // none; engine 2 is the same process throughout, idle meanwhile.
            restartAway(simulator, 0, LOST);
            restartAway(simulator, 1, 0);
            comeBack(simulator, 0);
            comeBack(simulator, 1);
            int sameProcessSubscriptions = simulator.call(all -> all.get(2).subscriptions());
            try (BrokerProcess broker = launch(config); KvIndexClient client = client(grpcPort)) {
                afterBrokerDown(simulator, client, broker, sameProcessSubscriptions, 2, old, LOST, 0);
                broker.kill();
            }
            // Down after SIGKILL, the other way round: engine 0 loses none, engine 1 LOST.
            old = List.of(heardOf(simulator, 0, 0), heardOf(simulator, 1, 0));
            restartAway(simulator, 0, 0);
            restartAway(simulator, 1, LOST);
            comeBack(simulator, 0);
            comeBack(simulator, 1);
            sameProcessSubscriptions = simulator.call(all -> all.get(2).subscriptions());
            try (BrokerProcess broker = launch(config); KvIndexClient client = client(grpcPort)) {
                afterBrokerDown(simulator, client, broker, sameProcessSubscriptions, 3, old, 0, LOST);
                assertThat(broker.terminate()).as(broker.tail()).isZero();
            }
        }
    }

    /**
     * The broker is back on its journal: engines 0 and 1 restarted while it was down (losing {@code lost0} and
     * {@code lost1} batches), engine 2 did not. Each publishes AFTER batches the broker hears; engines 0 and 1 must be
     * a new incarnation ({@code incarnation}) holding what the broker heard of them, engine 2 the same incarnation
     * holding all it published.
     */
    private void afterBrokerDown(Simulator simulator, KvIndexClient client, BrokerProcess broker,
            int sameProcessSubscriptions, long incarnation, List<List<byte[]>> old, int lost0, int lost1)
            throws Exception {
        awaitSubscribed(simulator, 0, 1);
        awaitSubscribed(simulator, 1, 1);
        awaitSubscribed(simulator, 2, sameProcessSubscriptions + 1);
        int[] lost = {lost0, lost1};
        for (int e = 0; e < 3; e++) {
            publish(simulator, e, AFTER);
        }
        for (int e = 0; e < 2; e++) {
            EngineInfo info = awaitCaughtUp(client, broker, "sim-" + e, incarnation, lost[e] + AFTER - 1);
            // Counters start again with the broker process; the incarnation comes from the journal.
            assertThat(List.of(info.getRestarts(), info.getGaps(), info.getVoids(), info.getUnknownHistoryBatches()))
                    .as("sim-%d: restarts, gaps, voids, unknown history batches", e)
                    .isEqualTo(List.of(1L, lost[e] > 0 ? 1L : 0L, 0L, (long) lost[e]));
            assertThat(info.getHistoryPartial()).as("sim-%d: history partial", e).isEqualTo(lost[e] > 0);
            assertIndexHoldsTheNewProcess(simulator, client, info, e, lost[e], old.get(e));
        }
        long last = simulator.call(all -> all.get(2).nextSequence()) - 1;
        EngineInfo same = awaitCaughtUp(client, broker, "sim-2", 1, last);
        assertThat(List.of(same.getRestarts(), same.getGaps(), same.getVoids(), same.getUnknownHistoryBatches()))
                .as("sim-2, the same process: restarts, gaps, voids, unknown history batches")
                .isEqualTo(List.of(0L, 0L, 0L, 0L));
        assertThat(same.getHistoryPartial()).isFalse();
        assertIndexHolds(simulator, client, same, 2, heardOf(simulator, 2, 0), 0,
                "sim-2: everything the one process published");
    }

    // ---- the engines ----

    /**
     * The engine's first process publishes FIRST batches, all heard; the index must hold them. Returns them, to check
     * later that none of that process's blocks outlive it.
     */
    private List<byte[]> firstProcess(Simulator simulator, KvIndexClient client, BrokerProcess broker, int e)
            throws Exception {
        publish(simulator, e, FIRST);
        EngineInfo info = awaitCaughtUp(client, broker, "sim-" + e, 1, FIRST - 1);
        assertThat(info.getReplayEndpoint()).as("configured as vLLM's default").isEmpty();
        assertThat(info.getHistoryPartial()).isFalse();
        List<byte[]> heard = heardOf(simulator, e, 0);
        assertIndexHolds(simulator, client, info, e, heard, 0, "sim-" + e + "'s first process");
        return heard;
    }

    /**
     * The engine's process ends (its sockets close) and a new one starts (sequence 0, empty cache, new hashes), which
     * publishes {@code unheard} batches before its PUB is bound: nobody hears them, and nothing can replay them.
     */
    private static void restartAway(Simulator simulator, int e, int unheard) {
        simulator.call(all -> {
            SimulatedEngine engine = all.get(e);
            engine.goAway();
            engine.restart();
            for (int i = 0; i < unheard; i++) {
                engine.step();
            }
            return null;
        });
    }

    /** The engine binds its ports again, once the closed sockets' listeners have let them go. */
    private static void comeBack(Simulator simulator, int e) throws InterruptedException {
        List<Integer> ports = simulator.call(all -> List.of(port(all.get(e).endpoint()),
                port(all.get(e).replayEndpoint())));
        Await.until("sim-" + e + "'s ports free", Duration.ofSeconds(10), () -> ports.stream().allMatch(Ports::free));
        simulator.call(all -> {
            all.get(e).comeBack();
            return null;
        });
    }

    private static int port(String endpoint) {
        return URI.create(endpoint).getPort();
    }

    private static void publish(Simulator simulator, int e, int batches) {
        simulator.call(all -> {
            for (int i = 0; i < batches; i++) {
                all.get(e).step();
            }
            return null;
        });
    }

    /** Waits until {@code count} subscriptions reached the engine's PUB: a batch published now is heard. */
    private static void awaitSubscribed(Simulator simulator, int e, int count) throws InterruptedException {
        Await.until("a broker subscribed to sim-" + e, Duration.ofSeconds(60),
                () -> simulator.call(all -> all.get(e).subscriptions()) >= count);
    }

    /** The current process's batches from sequence {@code from} on. */
    private static List<byte[]> heardOf(Simulator simulator, int e, long from) {
        return simulator.call(all -> {
            SimulatedEngine engine = all.get(e);
            List<byte[]> buffered = engine.bufferedPayloads();
            return List.copyOf(buffered.subList(Math.toIntExact(from - engine.firstBuffered()), buffered.size()));
        });
    }

    // ---- the broker ----

    /** A configuration of the simulator's {@code engines} (and {@code moreEngines}), its journal in {@code folder}. */
    private static Path writeConfig(Path folder, int grpcPort, Simulator simulator, List<Integer> engines,
            String moreEngines) throws Exception {
        StringBuilder yaml = new StringBuilder("engines:\n  static:\n");
        // Without replayEndpoint: vLLM's default.
        engines.forEach(e -> {
            var spec = simulator.specs(false).get(e);
            yaml.append("    - {pod: ").append(spec.key().pod()).append(", model: '").append(spec.model())
                    .append("', endpoint: '").append(spec.endpoint()).append("', topic: '").append(spec.topic())
                    .append("'}\n");
        });
        yaml.append(moreEngines);
        yaml.append("journal:\n  dir: '").append(folder.resolve("journal")).append("'\n  sync: none\n")
                .append("grpc:\n  host: 127.0.0.1\n  port: ").append(grpcPort).append('\n')
                .append("metrics:\n  port: 0\nlog:\n  statusIntervalMs: 600000\n");
        Files.createDirectories(folder);
        Path file = folder.resolve("broker.yaml");
        Files.writeString(file, yaml);
        return file;
    }

    private BrokerProcess launch(Path config) throws Exception {
        return BrokerProcess.serve(config.resolveSibling("broker-" + launches++ + ".log"), "--config",
                config.toString());
    }

    private static KvIndexClient client(int grpcPort) {
        // Retries while the broker starts (recovering its journal): not listening, or not serving yet.
        return KvIndexClient.builder(List.of("127.0.0.1:" + grpcPort)).deadline(Duration.ofSeconds(5))
                .maxAttempts(200).backoff(Duration.ofMillis(100)).build();
    }

    /** The engine's ListEngines row, or null while the broker is not serving yet. */
    private static EngineInfo row(KvIndexClient client, String pod) {
        ListEnginesResponse engines;
        try {
            engines = client.listEngines();
        } catch (StatusRuntimeException starting) {
            // Ingest subscribes before the gRPC server listens: still starting, on a busy machine for seconds.
            return null;
        }
        return engines.getEnginesList().stream().filter(e -> e.getPod().equals(pod)).findFirst()
                .orElseThrow(() -> new AssertionError("no engine " + pod + " in " + engines));
    }

    /** Waits until the engine's {@code incarnation} has applied {@code sequence}; returns its row then. */
    private static EngineInfo awaitCaughtUp(KvIndexClient client, BrokerProcess broker, String pod, long incarnation,
            long sequence) throws Exception {
        EngineInfo[] info = new EngineInfo[1];
        try {
            Await.until(pod + " caught up", Duration.ofSeconds(60), () -> {
                assertThat(broker.isAlive()).as("the broker runs").isTrue();
                info[0] = row(client, pod);
                return info[0] != null && info[0].getIncarnation() == incarnation
                        && info[0].getAppliedSequence() == sequence;
            });
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + ": want incarnation " + incarnation + " at " + sequence
                    + ", have " + info[0] + "\n" + broker.tail(), e);
        }
        return info[0];
    }

    // ---- the comparison ----

    /**
     * After a restart: the index holds what the new process published from sequence {@code from} on (what the broker
     * could hear of it), and none of the dead process's blocks.
     */
    private static void assertIndexHoldsTheNewProcess(Simulator simulator, KvIndexClient client, EngineInfo info,
            int e, long from, List<byte[]> deadProcess) throws Exception {
        List<byte[]> heard = heardOf(simulator, e, from);
        assertThat(heard).as("the new process's batches the broker heard").hasSize(AFTER);
        assertIndexHolds(simulator, client, info, e, heard, from, info.getPod() + "'s new process from " + from);
        Set<Long> dead = storedHashes(deadProcess);
        dead.removeAll(storedHashes(heardOf(simulator, e, 0)));
        assertThat(dead).as("the dead process's block hashes").isNotEmpty();
        assertThat(holders(client.lookup(LookupRequest.newBuilder().addAllBlockHashes(dead).build()),
                info.getEngineId())).as("%s: the dead process's blocks", info.getPod()).allMatch(m -> m == 0);
    }

    /**
     * The engine's row and its answers equal an index built here from {@code batches} (sequences from {@code from}):
     * block counts by medium, Lookup of every content key and engine hash they stored, and Score of the model's
     * system prompts.
     */
    private static void assertIndexHolds(Simulator simulator, KvIndexClient client, EngineInfo info, int e,
            List<byte[]> batches, long from, String what) throws Exception {
        int id = info.getEngineId();
        String model = simulator.call(all -> all.get(e).options().model());
        List<int[]> prompts = simulator.call(all -> {
            List<int[]> eight = new ArrayList<>();
            for (int p = 0; p < 8; p++) {
                eight.add(all.get(e).systemPrompt(p));
            }
            return eight;
        });
        BlockIndex reference = new BlockIndex(any -> model, 16, PrefixScorer.Weights.DEFAULT);
        KvEventDecoder decoder = new KvEventDecoder();
        GroupKinds kinds = new GroupKinds();
        for (int i = 0; i < batches.size(); i++) {
            byte[] payload = batches.get(i);
            reference.apply(id, info.getIncarnation(), from + i, decoder.decode(payload, 0, payload.length, kinds));
        }
        BlockIndex.EngineSummary expected = reference.engineSummary(id);
        assertThat(List.of(info.getBlocks(), info.getGpuBlocks(), info.getCpuBlocks(), info.getStorageBlocks()))
                .as("%s: blocks, GPU, CPU, storage", what).isEqualTo(List.of(expected.blocks(), expected.gpuBlocks(),
                        expected.cpuBlocks(), expected.storageBlocks()));
        assertThat(expected.blocks()).as("%s: blocks held", what).isPositive();

        long[] keys = reference.holdings(id, true).keys();
        List<Integer> byKey = holders(client.lookup(LookupRequest.newBuilder()
                .addAllContentKeys(Arrays.stream(keys).boxed().toList()).build()), id);
        assertThat(byKey).as("%s: media by content key", what).isEqualTo(media(reference.lookupKeys(keys), id));
        long[] hashes = storedHashes(batches).stream().mapToLong(Long::longValue).toArray();
        List<Integer> byHash = holders(client.lookup(LookupRequest.newBuilder()
                .addAllBlockHashes(Arrays.stream(hashes).boxed().toList()).build()), id);
        assertThat(byHash).as("%s: media by engine hash", what).isEqualTo(media(reference.lookupHashes(hashes), id));

        // Score, filtered to this engine (engines of the same model share the system prompts).
        Map<Integer, String> got = new TreeMap<>();
        Map<Integer, String> want = new TreeMap<>();
        for (int p = 0; p < 8; p++) {
            int[] tokens = prompts.get(p);
            ScoreResponse answer = client.score(ScoreRequest.newBuilder().setModel(model).addEngineIds(id)
                    .addAllTokenIds(Arrays.stream(tokens).boxed().toList()).build());
            for (int i = 0; i < answer.getEngineIdsCount(); i++) {
                got.put(p, answer.getGpuBlocks(i) + "/" + answer.getOffloadBlocks(i) + "/" + answer.getScores(i));
            }
            for (PrefixScore s : reference.score(model, null, tokens, null, new int[] {id}, 0, 0)) {
                want.put(p, s.gpuBlocks() + "/" + s.offloadBlocks() + "/" + s.score());
            }
        }
        assertThat(got).as("%s: Score of the system prompts", what).isEqualTo(want);
        assertThat(want).as("%s: system prompts the engine holds", what).isNotEmpty();
    }

    /** Every engine hash the batches stored. */
    private static Set<Long> storedHashes(List<byte[]> batches) throws Exception {
        Set<Long> hashes = new LinkedHashSet<>();
        KvEventDecoder decoder = new KvEventDecoder();
        GroupKinds kinds = new GroupKinds();
        for (byte[] payload : batches) {
            for (KvEvent event : decoder.decode(payload, 0, payload.length, kinds).events()) {
                if (event instanceof BlockStored stored) {
                    Arrays.stream(stored.blockHashes()).forEach(hashes::add);
                }
            }
        }
        return hashes;
    }

    /** For each looked-up item, the media engine {@code id} holds it on (0 if it does not). */
    private static List<Integer> holders(LookupResponse response, int id) {
        List<Integer> media = new ArrayList<>();
        int at = 0;
        for (int count : response.getHolderCountsList()) {
            int found = 0;
            for (int i = at; i < at + count; i++) {
                if (response.getEngineIds(i) == id) {
                    found = response.getMedia(i);
                }
            }
            media.add(found);
            at += count;
        }
        return media;
    }

    private static List<Integer> media(List<List<BlockIndex.Holder>> holders, int id) {
        return holders.stream().map(h -> h.stream().filter(x -> x.engineId() == id).mapToInt(BlockIndex.Holder::media)
                .findFirst().orElse(0)).toList();
    }
}
