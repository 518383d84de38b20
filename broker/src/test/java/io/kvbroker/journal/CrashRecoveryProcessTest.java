package io.kvbroker.journal;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.cli.KvbrokerCommand;
import io.kvbroker.client.IndexMirror;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.client.KvIndexWatcher;
import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.proto.v1.EngineInfo;
import io.kvbroker.proto.v1.ListEnginesResponse;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.sim.Workload;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import io.kvbroker.watch.StreamCopy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kvbroker as a separate process with a journal, fed by 20 simulated engines at load, killed with SIGKILL at random
 * moments and restarted, round after round: once caught up, its index must equal the ground truth computed from
 * everything the engines published, and its journal must hold every batch exactly once. A gateway's Watch client
 * runs throughout: its mirror must score as the truth does every round, and it never misses or doubles a batch.
 *
 * <p>The truth is rebuilt here from the engines' own seeds (a simulated engine's history is a function of its seed),
 * encoded and decoded as the wire does, and applied to an index of this process that never crashed.
 */
@Tag("slow")
class CrashRecoveryProcessTest {
    private static final int ENGINES = 20;
    private static final int ROUNDS = 3;
    private static final long SEED = 41;

    @TempDir
    Path work;

    /** The engines' histories replayed into an index that never crashes. */
    private static final class Truth {
        final BlockIndex index;
        final List<SimulatedEngine.Options> options;
        final Workload[] workloads = new Workload[ENGINES];
        final GroupKinds[] kinds = new GroupKinds[ENGINES];
        final long[] applied = new long[ENGINES];
        final KvEventEncoder encoder = new KvEventEncoder();
        final KvEventDecoder decoder = new KvEventDecoder();

        Truth(List<SimulatedEngine.Options> options) {
            this.options = options;
            index = new BlockIndex(id -> options.get(id).model(), 16, PrefixScorer.Weights.DEFAULT);
            for (int e = 0; e < ENGINES; e++) {
                SimulatedEngine.Options o = options.get(e);
                workloads[e] = new Workload(new SplittableRandom(o.seed()), o.model().hashCode(), o.shape());
                kinds[e] = new GroupKinds();
            }
        }

        /** Applies each engine's batches up to (not including) {@code next[e]}. */
        void advance(long[] next) throws Exception {
            for (int e = 0; e < ENGINES; e++) {
                for (; applied[e] < next[e]; applied[e]++) {
                    byte[] payload = encoder.encode(new KvEventBatch(0, 0, workloads[e].step(), 0, 0),
                            options.get(e).form());
                    index.apply(e, 1, applied[e], decoder.decode(payload, 0, payload.length, kinds[e]));
                }
            }
        }
    }

    @Test
    void killedAtRandomItRecoversTheIndexExactlyAndAppliesNothingTwice() throws Exception {
        List<SimulatedEngine.Options> options = Simulator.fleet(ENGINES, SEED);
        int basePort = Ports.freeRange(2 * ENGINES);
        Truth truth = new Truth(options);
        SplittableRandom random = new SplittableRandom(SEED);
        Path journalDir = work.resolve("journal");
        int grpcPort = Ports.freeRange(1);
        // A gateway's copy of the index, kept by Watch across every crash and restart of the broker.
        IndexMirror mirror = new IndexMirror();
        StreamCopy copy = new StreamCopy();
        try (Simulator simulator = new Simulator(options, basePort, 100).start();
                KvIndexWatcher watcher = KvIndexWatcher.builder(List.of("127.0.0.1:" + grpcPort), message -> {
                    mirror.onMessage(message);
                    copy.apply(message);
                }).initialBackoff(Duration.ofMillis(50)).maxBackoff(Duration.ofMillis(500)).build()) {
            Path config = writeConfig(simulator, journalDir);
            watcher.start();
            for (int round = 0; round <= ROUNDS; round++) {
                Process broker = launch(config, grpcPort, round);
                try (KvIndexClient client = KvIndexClient.builder(List.of("127.0.0.1:" + grpcPort))
                        .deadline(Duration.ofSeconds(5)).maxAttempts(200).backoff(Duration.ofMillis(100)).build()) {
                    // Caught up: engines paused, every engine's last published batch applied.
                    simulator.setStepping(false);
                    long[] next = simulator.call(engines -> engines.stream()
                            .mapToLong(SimulatedEngine::nextSequence).toArray());
                    ListEnginesResponse engines = awaitCaughtUp(client, next, broker);
                    truth.advance(next);
                    compare(round, client, engines, simulator, truth);
                    awaitMirror(mirror, watcher, next);
                    compareMirror(round, mirror, simulator, truth);
                    if (round == ROUNDS) {
                        broker.destroy();
                        assertThat(broker.waitFor(60, TimeUnit.SECONDS)).isTrue();
                        break;
                    }
                    // Load again, then SIGKILL at a random moment: once the engines have published a random number
                    // of batches (about 0.5 to 3 s of their rate), counted rather than timed so that a slow machine
                    // still crashes the broker under load.
                    long publishedBefore = Arrays.stream(next).sum();
                    long loadBatches = ENGINES * (50 + random.nextInt(250));
                    simulator.setStepping(true);
                    Await.until("the engines published " + loadBatches + " batches", Duration.ofSeconds(120),
                            () -> simulator.call(all -> all.stream().mapToLong(SimulatedEngine::nextSequence)
                                    .sum()) >= publishedBefore + loadBatches);
                } finally {
                    broker.destroyForcibly();
                    broker.waitFor(60, TimeUnit.SECONDS);
                }
            }
        }
        assertEveryBatchLoggedOnce(journalDir);
        assertThat(copy.batches).as("the watcher received batches").isPositive();
        // Watchers only ever hold what the journal wrote: after every crash each engine resumed from the log, none
        // came again as a snapshot (the first stream's snapshots are the only ones).
        assertThat(copy.snapshots).as("snapshots beyond the first stream's").isEqualTo(ENGINES);
    }

    /** Waits until the watcher's mirror holds every engine at its last published batch. */
    private static void awaitMirror(IndexMirror mirror, KvIndexWatcher watcher, long[] next) throws Exception {
        Await.until("the mirror caught up", Duration.ofSeconds(60), () -> {
            assertThat(watcher.failure()).as("the watcher runs").isNull();
            for (int e = 0; e < ENGINES; e++) {
                var position = mirror.positions().position("sim-" + e + "/0");
                if (position == null || position.getSequence() != next[e] - 1) {
                    return false;
                }
            }
            return true;
        });
    }

    /** The mirror's Score equals the truth's, by engine name, for the engines' system prompts. */
    private static void compareMirror(int round, IndexMirror mirror, Simulator simulator, Truth truth) {
        forEachSystemPrompt(simulator, truth, (name, p, tokens) -> {
            Map<String, String> got = new TreeMap<>();
            for (PrefixScore s : mirror.score(name, null, tokens, 0, 0)) {
                got.put(mirror.name(s.engineId()), s.gpuBlocks() + "/" + s.offloadBlocks() + "/" + s.score());
            }
            Map<String, String> expected = new TreeMap<>();
            for (PrefixScore s : truth.index.score(name, null, tokens, null, null, 0, 0)) {
                expected.put("sim-" + s.engineId() + "/0", s.gpuBlocks() + "/" + s.offloadBlocks() + "/"
                        + s.score());
            }
            assertThat(got).as("round %d: the mirror's %s prompt %d", round, name, p).isEqualTo(expected);
        });
    }

    /** A prompt of the simulated fleet: model, index and tokens. */
    private interface PromptVisitor {
        void visit(String model, int index, int[] tokens);
    }

    /** Visits the first two engines' (one per model) eight system prompts. */
    private static void forEachSystemPrompt(Simulator simulator, Truth truth, PromptVisitor visitor) {
        for (int model = 0; model < 2; model++) {
            String name = truth.options.get(model).model();
            for (int p = 0; p < 8; p++) {
                int engine = model;
                int prompt = p;
                visitor.visit(name, p, simulator.call(all -> all.get(engine).systemPrompt(prompt)));
            }
        }
    }

    private static Path writeConfig(Simulator simulator, Path journalDir) throws Exception {
        StringBuilder yaml = new StringBuilder("engines:\n  static:\n");
        simulator.specs().forEach(spec -> yaml.append("    - {pod: ").append(spec.key().pod()).append(", model: '")
                .append(spec.model()).append("', endpoint: '").append(spec.endpoint()).append("', replayEndpoint: '")
                .append(spec.replayEndpoint().orElseThrow()).append("', topic: '").append(spec.topic())
                .append("'}\n"));
        yaml.append("journal:\n  dir: '").append(journalDir).append("'\n  sync: none\n")
                .append("  checkpoint:\n    everyBatches: 150\n")
                .append("metrics:\n  port: 0\nlog:\n  statusIntervalMs: 600000\n");
        Path file = journalDir.resolveSibling("broker.yaml");
        Files.writeString(file, yaml);
        return file;
    }

    private Process launch(Path config, int grpcPort, int round) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xmx512m", "-cp", System.getProperty("java.class.path"), KvbrokerCommand.class.getName(),
                "serve", "--config", config.toString(), "--set", "grpc.port=" + grpcPort));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().keySet().removeIf(name -> name.startsWith("KVBROKER_"));
        builder.redirectErrorStream(true);
        builder.redirectOutput(work.resolve("broker-" + round + ".log").toFile());
        return builder.start();
    }

    private ListEnginesResponse awaitCaughtUp(KvIndexClient client, long[] next, Process broker) throws Exception {
        AtomicReference<ListEnginesResponse> last = new AtomicReference<>();
        Await.until("the broker caught up with every engine", Duration.ofSeconds(120), () -> {
            assertThat(broker.isAlive()).as("the broker runs").isTrue();
            ListEnginesResponse engines;
            try {
                engines = client.listEngines();
            } catch (io.grpc.StatusRuntimeException e) {
                // Still starting (recovering its journal): not listening, or not serving yet.
                return false;
            }
            last.set(engines);
            Map<String, Long> applied = new HashMap<>();
            engines.getEnginesList().forEach(e -> applied.put(e.getPod(), e.getAppliedSequence()));
            for (int e = 0; e < ENGINES; e++) {
                if (applied.getOrDefault("sim-" + e, -2L) != next[e] - 1) {
                    return false;
                }
            }
            return true;
        }, () -> last.get() + " want " + Arrays.toString(next));
        return last.get();
    }

    private static void compare(int round, KvIndexClient client, ListEnginesResponse engines, Simulator simulator,
            Truth truth) {
        Map<Integer, Integer> truthIdOf = new HashMap<>();
        for (EngineInfo info : engines.getEnginesList()) {
            int e = Integer.parseInt(info.getPod().substring("sim-".length()));
            truthIdOf.put(info.getEngineId(), e);
            BlockIndex.EngineSummary expected = truth.index.engineSummary(e);
            assertThat(List.of(info.getBlocks(), info.getGpuBlocks(), info.getCpuBlocks(), info.getStorageBlocks()))
                    .as("round %d engine %s blocks", round, info.getPod())
                    .isEqualTo(List.of(expected.blocks(), expected.gpuBlocks(), expected.cpuBlocks(),
                            expected.storageBlocks()));
            assertThat(info.getRestarts()).as("round %d engine %s: a resumed engine is no restart", round,
                    info.getPod()).isZero();
        }
        int[] scored = {0};
        forEachSystemPrompt(simulator, truth, (name, p, tokens) -> {
            ScoreResponse answer = client.score(ScoreRequest.newBuilder().setModel(name)
                    .addAllTokenIds(Arrays.stream(tokens).boxed().toList()).build());
            Map<Integer, String> got = new TreeMap<>();
            for (int i = 0; i < answer.getEngineIdsCount(); i++) {
                got.put(truthIdOf.get(answer.getEngineIds(i)), answer.getGpuBlocks(i) + "/"
                        + answer.getOffloadBlocks(i) + "/" + answer.getScores(i));
            }
            Map<Integer, String> expected = new TreeMap<>();
            for (PrefixScore s : truth.index.score(name, null, tokens, null, null, 0, 0)) {
                expected.put(s.engineId(), s.gpuBlocks() + "/" + s.offloadBlocks() + "/" + s.score());
            }
            assertThat(got).as("round %d %s prompt %d", round, name, p).isEqualTo(expected);
            scored[0] += expected.size();
        });
        assertThat(scored[0]).as("round %d: the prompts match cached prefixes", round).isPositive();
    }

    /** Every engine's records: one incarnation, sequences 0, 1, 2, ... each once. */
    private static void assertEveryBatchLoggedOnce(Path journalDir) {
        Map<String, Long> expectedNext = new HashMap<>();
        try (Journal journal = Journal.open(journalDir, Journal.Sync.NONE)) {
            assertThat(journal.firstSequence()).as("nothing trimmed: the whole history is checked").isOne();
            journal.forEachRecord(1, (sequence, record) -> {
                assertThat(record.incarnation()).as(record.engine()).isOne();
                long want = expectedNext.getOrDefault(record.engine(), 0L);
                assertThat(record.sequence()).as("%s: the next batch, once", record.engine()).isEqualTo(want);
                expectedNext.put(record.engine(), want + 1);
            });
        }
        assertThat(expectedNext).hasSize(ENGINES);
    }
}
