package io.kvbroker.watch;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import io.kvbroker.testing.SimulatedBrokers;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Watch against real brokers (in this JVM) fed over ZeroMQ by simulated engines: resumes after disconnects, resume
 * points older than the broker keeps, a slow watcher beside a fast one, and fail-over to a second broker. Every
 * stream is applied by {@link StreamCopy}, which fails on a missed or doubled batch; at the end, with the engines
 * paused and everything applied, the copy must hold exactly what the broker's index holds.
 */
@Tag("slow")
class WatchIntegrationTest {
    private static final int ENGINES = 6;
    @TempDir
    Path work;
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
    }

    private Simulator simulator(long seed) {
        Simulator simulator = new Simulator(Simulator.fleet(ENGINES, seed), Ports.freeRange(2 * ENGINES), 100)
                .start();
        open.add(simulator);
        return simulator;
    }

    private BrokerDaemon broker(Simulator simulator, String name, Map<String, String> settings) throws Exception {
        BrokerDaemon daemon = SimulatedBrokers.start(simulator, work, name, settings);
        open.add(daemon::stop);
        return daemon;
    }

    private KvIndexServiceGrpc.KvIndexServiceBlockingStub stub(BrokerDaemon daemon) {
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", daemon.grpcPort()).usePlaintext()
                .build();
        open.add(() -> {
            channel.shutdownNow();
            channel.awaitTermination(5, TimeUnit.SECONDS);
        });
        return KvIndexServiceGrpc.newBlockingStub(channel);
    }

    private static WatchRequest request(ResumeToken token) {
        return WatchRequest.newBuilder().setResumeToken(token == null ? com.google.protobuf.ByteString.EMPTY
                : token.toByteString()).build();
    }

    /** Reads {@code messages} messages of a stream into the copy, then disconnects. */
    private static void watchFor(KvIndexServiceGrpc.KvIndexServiceBlockingStub stub, StreamCopy copy,
            ResumeToken token, int messages) {
        watchForFiltered(stub, copy, request(token), messages);
    }

    /** Pauses the engines, waits until the broker applied all they published, and reads until the copy has it. */
    private static void settle(Simulator simulator, BrokerDaemon daemon,
            KvIndexServiceGrpc.KvIndexServiceBlockingStub stub, StreamCopy copy) throws Exception {
        simulator.setStepping(false);
        long[] next = simulator.call(engines -> engines.stream().mapToLong(SimulatedEngine::nextSequence).toArray());
        for (int e = 0; e < ENGINES; e++) {
            int engine = e;
            Await.until("the broker caught up with engine " + e, Duration.ofSeconds(60),
                    () -> daemon.ingest().stream(engine).cursor() == next[engine] - 1);
        }
        long last = daemon.feed().next() - 1;
        io.grpc.Context.CancellableContext call = io.grpc.Context.current().withCancellation();
        try {
            call.run(() -> {
                Iterator<WatchResponse> stream = stub.withDeadlineAfter(60, TimeUnit.SECONDS)
                        .watch(request(copy.token()));
                while (!caughtUp(copy, daemon, last)) {
                    copy.apply(stream.next());
                }
            });
        } finally {
            call.cancel(null);
        }
    }

    private static boolean caughtUp(StreamCopy copy, BrokerDaemon daemon, long last) {
        if (copy.starts.isEmpty() || copy.positions.size() < ENGINES) {
            return false;
        }
        EngineRegistry registry = daemon.registry();
        for (EngineRegistry.Entry entry : registry.live()) {
            var position = copy.positions.get(entry.spec().key().toString());
            long applied = daemon.index().holdings(entry.id(), false).sequence();
            if (position == null || position.getSequence() != applied) {
                return false;
            }
        }
        return last >= 0;
    }

    /** The copy holds exactly the broker's holdings, engine by engine. */
    private static void assertSameAsBroker(StreamCopy copy, BrokerDaemon daemon) {
        for (EngineRegistry.Entry entry : daemon.registry().live()) {
            BlockIndex.EngineHoldings holdings = daemon.index().holdings(entry.id(), true);
            Map<Long, Integer> expected = new HashMap<>();
            for (int i = 0; i < holdings.keys().length; i++) {
                expected.put(holdings.keys()[i], holdings.values()[i]);
            }
            String name = entry.spec().key().toString();
            assertThat(copy.holdings.getOrDefault(name, Map.of())).as("holdings of %s", name)
                    .isEqualTo(expected);
            assertThat(expected).as("%s holds something", name).isNotEmpty();
        }
    }

    @Test
    void resumesExactlyAfterDisconnects() throws Exception {
        Simulator simulator = simulator(11);
        BrokerDaemon daemon = broker(simulator, "a", Map.of());
        var stub = stub(daemon);
        StreamCopy copy = new StreamCopy();
        watchFor(stub, copy, null, 40);
        assertThat(copy.lastStart().getWholeSnapshot()).isTrue();
        for (int round = 0; round < 6; round++) {
            // Away while every engine publishes about ten batches: each resume has something to catch up on.
            long away = daemon.feed().next();
            Await.until("batches published while the watcher is away", Duration.ofSeconds(30),
                    () -> daemon.feed().next() >= away + 10 * ENGINES);
            watchFor(stub, copy, copy.token(), 25);
            assertThat(copy.lastStart().getWholeSnapshot()).isFalse();
            assertThat(copy.lastStart().getEnginesSnapshotted()).as("round %d resumes every engine", round)
                    .isZero();
        }
        long snapshots = copy.snapshots;
        settle(simulator, daemon, stub, copy);
        assertThat(copy.snapshots).as("no snapshot after the first stream").isEqualTo(snapshots);
        assertThat(copy.caughtUps).as("every stream said when its backlog was sent").isGreaterThanOrEqualTo(7);
        assertThat(copy.batches).isPositive();
        assertSameAsBroker(copy, daemon);
    }

    /**
     * Watches a little, stays away while 2,500 batches pass (more than a buffer of 1,024), resumes, and checks how
     * the resumed stream started; then settles and compares.
     */
    private void resumeAfterTheBufferMovedOn(long seed, Map<String, String> settings,
            java.util.function.Consumer<io.kvbroker.proto.v1.WatchStarted> check) throws Exception {
        Simulator simulator = simulator(seed);
        Map<String, String> all = new HashMap<>(settings);
        all.put("watch.bufferBatches", "1024");
        BrokerDaemon daemon = broker(simulator, "a", all);
        var stub = stub(daemon);
        StreamCopy copy = new StreamCopy();
        watchFor(stub, copy, null, 20);
        long from = daemon.feed().next();
        Await.until("2,500 batches past the watcher's position", Duration.ofSeconds(60),
                () -> daemon.feed().next() >= from + 2_500);
        watchFor(stub, copy, copy.token(), 5);
        assertThat(copy.lastStart().getWholeSnapshot()).isFalse();
        check.accept(copy.lastStart());
        settle(simulator, daemon, stub, copy);
        assertSameAsBroker(copy, daemon);
    }

    @Test
    void aResumePointOlderThanTheBufferGetsSnapshotsOfThoseEnginesAlone() throws Exception {
        resumeAfterTheBufferMovedOn(12, Map.of(), started -> assertThat(started.getEnginesSnapshotted())
                .isPositive());
    }

    @Test
    void withAJournalAResumePointOlderThanTheBufferResumesFromTheLog() throws Exception {
        resumeAfterTheBufferMovedOn(13, Map.of("journal.dir", work.resolve("journal").toString()), started -> {
            assertThat(started.getEnginesSnapshotted()).as("every engine resumed from the journal").isZero();
            assertThat(started.getEnginesResumed() + started.getEnginesCurrent()).isEqualTo(ENGINES);
        });
    }

    @Test
    void aSlowWatcherIsCutOverToResyncWithoutHurtingAFastOne() throws Exception {
        Simulator simulator = simulator(14);
        BrokerDaemon daemon = broker(simulator, "a", Map.of("watch.bufferBatches", "1024"));
        var stub = stub(daemon);
        StreamCopy fast = new StreamCopy();
        StreamCopy slow = new StreamCopy();
        io.grpc.Context.CancellableContext slowCall = io.grpc.Context.current().withCancellation();
        Status[] slowEnd = new Status[1];
        java.util.concurrent.atomic.AtomicBoolean hurry = new java.util.concurrent.atomic.AtomicBoolean();
        Thread slowReader = new Thread(() -> slowCall.run(() -> {
            Iterator<WatchResponse> stream = stub.watch(request(null));
            try {
                while (stream.hasNext()) {
                    slow.apply(stream.next());
                    if (!hurry.get()) {
                        // Pacing, not waiting: this reader is slow on purpose, so that the broker cuts it.
                        Thread.sleep(200);
                    }
                }
            } catch (StatusRuntimeException e) {
                slowEnd[0] = e.getStatus();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        slowReader.start();
        io.grpc.Context.CancellableContext fastCall = io.grpc.Context.current().withCancellation();
        try {
            fastCall.run(() -> {
                Iterator<WatchResponse> stream = stub.watch(request(null));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (daemon.watch().counters().fellBehind() == 0 && System.nanoTime() < deadline) {
                    fast.apply(stream.next());
                }
            });
        } finally {
            fastCall.cancel(null);
        }
        assertThat(daemon.watch().counters().fellBehind()).as("the slow watcher was cut").isOne();
        // What the transport had buffered is read at full speed now; then the stream's end shows.
        hurry.set(true);
        slowReader.join(30_000);
        slowCall.cancel(null);
        assertThat(slowEnd[0]).isNotNull();
        assertThat(slowEnd[0].getCode()).isEqualTo(Status.Code.ABORTED);
        assertThat(slowEnd[0].getDescription()).contains("fell behind").contains("resume from your token");
        // Both resume from their tokens and end up exact.
        settle(simulator, daemon, stub, fast);
        assertSameAsBroker(fast, daemon);
        settle(simulator, daemon, stub, slow);
        assertSameAsBroker(slow, daemon);
    }

    @Test
    void failsOverToASecondBrokerFedByTheSameEnginesWithoutAWholeSnapshot() throws Exception {
        Simulator simulator = simulator(15);
        BrokerDaemon first = broker(simulator, "a", Map.of());
        BrokerDaemon second = broker(simulator, "b", Map.of());
        StreamCopy copy = new StreamCopy();
        watchFor(stub(first), copy, null, 60);
        // The second broker has applied at least what the copy holds of every engine, so it resumes each from there.
        Await.until("the second broker past the copy's positions", Duration.ofSeconds(30),
                () -> second.registry().live().stream().allMatch(entry -> {
                    var position = copy.positions.get(entry.spec().key().toString());
                    return position != null
                            && second.index().holdings(entry.id(), false).sequence() >= position.getSequence();
                }));
        var stub = stub(second);
        watchFor(stub, copy, copy.token(), 10);
        assertThat(copy.lastStart().getBrokerId()).isNotEqualTo(copy.starts.get(0).getBrokerId());
        assertThat(copy.lastStart().getWholeSnapshot()).isFalse();
        assertThat(copy.lastStart().getEnginesSnapshotted()).as("engines resumed from the second broker's buffer")
                .isZero();
        settle(simulator, second, stub, copy);
        assertSameAsBroker(copy, second);
    }

    /**
     * The property the client stub promises: a mirror fed by Watch (through a disconnect and a resume) gives the
     * broker's Score once caught up, for random prompts over seeded random workloads.
     */
    @Test
    void aMirrorFedByWatchScoresAsTheBrokerDoes() throws Exception {
        for (long seed : new long[] {31, 32, 33}) {
            Simulator simulator = simulator(seed);
            BrokerDaemon daemon = broker(simulator, "m" + seed, Map.of());
            List<String> address = List.of("127.0.0.1:" + daemon.grpcPort());
            io.kvbroker.client.IndexMirror mirror = new io.kvbroker.client.IndexMirror();
            StreamCopy copy = new StreamCopy();
            io.kvbroker.client.WatchListener both = message -> {
                mirror.onMessage(message);
                copy.apply(message);
            };
            io.kvbroker.client.KvIndexWatcher first = io.kvbroker.client.KvIndexWatcher.builder(address, both)
                    .build();
            first.start();
            // The first stream sends its backlog and then live batches before it is closed, so the second resumes
            // from a token that is behind the engines while they go on publishing.
            Await.until("the first watcher past its backlog", Duration.ofSeconds(30),
                    () -> first.positions().caughtUp() && first.counters().batchesReceived() >= 10 * ENGINES);
            first.close();
            io.kvbroker.client.KvIndexWatcher second = io.kvbroker.client.KvIndexWatcher.builder(address, both)
                    .token(first.token()).build();
            open.add(second);
            second.start();
            Await.until("the second watcher resumed and applying batches", Duration.ofSeconds(30),
                    () -> second.counters().resumes() >= 1 && second.counters().batchesReceived() >= 10 * ENGINES);
            simulator.setStepping(false);
            long[] next = simulator.call(engines -> engines.stream().mapToLong(SimulatedEngine::nextSequence)
                    .toArray());
            Await.until("the mirror caught up, or the watcher failed", Duration.ofSeconds(60),
                    () -> second.failure() != null || mirrorCaughtUp(mirror, daemon, next));
            assertThat(second.failure()).as("the watcher runs").isNull();
            assertThat(first.failure()).isNull();
            assertThat(mirror.positions().caughtUp()).as("the stream said its backlog was sent").isTrue();
            assertThat(second.counters().snapshotsReceived()).as("the second stream resumed, no snapshot").isZero();
            java.util.SplittableRandom random = new java.util.SplittableRandom(seed);
            List<SimulatedEngine.Options> fleet = Simulator.fleet(ENGINES, seed);
            int matched = 0;
            for (int q = 0; q < 200; q++) {
                int owner = random.nextInt(ENGINES);
                String model = fleet.get(owner).model();
                int[] system = simulator.call(engines -> engines.get(owner).systemPrompt(random.nextInt(8)));
                int keep = random.nextInt(system.length + 1);
                int[] prompt = java.util.Arrays.copyOf(system, keep + random.nextInt(64));
                for (int t = keep; t < prompt.length; t++) {
                    prompt[t] = random.nextInt(32_000);
                }
                int minTokens = random.nextInt(4) == 0 ? 16 * random.nextInt(8) : 0;
                Map<String, io.kvbroker.core.PrefixScore> expected = new HashMap<>();
                daemon.index().score(model, null, prompt, null, null, 0, minTokens).forEach(score -> expected.put(
                        daemon.registry().entry(score.engineId()).spec().key().toString(), score));
                Map<String, io.kvbroker.core.PrefixScore> actual = new HashMap<>();
                mirror.score(model, null, prompt, 0, minTokens).forEach(score -> actual.put(
                        mirror.name(score.engineId()), score));
                assertThat(actual.keySet()).as("seed %d query %d: engines", seed, q).isEqualTo(expected.keySet());
                for (String name : expected.keySet()) {
                    io.kvbroker.core.PrefixScore want = expected.get(name);
                    io.kvbroker.core.PrefixScore got = actual.get(name);
                    assertThat(new double[] {got.gpuBlocks(), got.offloadBlocks(), got.score()})
                            .as("seed %d query %d engine %s", seed, q, name)
                            .containsExactly(want.gpuBlocks(), want.offloadBlocks(), want.score());
                }
                matched += expected.isEmpty() ? 0 : 1;
            }
            assertThat(matched).as("seed %d: queries that matched some engine", seed).isGreaterThan(50);
            second.close();
        }
    }

    private static boolean mirrorCaughtUp(io.kvbroker.client.IndexMirror mirror, BrokerDaemon daemon, long[] next) {
        for (EngineRegistry.Entry entry : daemon.registry().live()) {
            long applied = daemon.index().holdings(entry.id(), false).sequence();
            var position = mirror.positions().position(entry.spec().key().toString());
            if (applied != next[entry.id()] - 1 || position == null || position.getSequence() != applied) {
                return false;
            }
        }
        return true;
    }

    /**
     * A storm: 60 watchers open at once with whole snapshots, then all reconnect at once with their tokens, while
     * the engines publish: every stream is served, the reconnects resume without snapshots, and ingest loses nothing
     * (no engine is voided, which a long-stalled ingest thread would cause once the engines' buffers moved on).
     */
    @Test
    void aStormOfReconnectingWatchersIsServedWithoutStallingIngest() throws Exception {
        Simulator simulator = simulator(17);
        BrokerDaemon daemon = broker(simulator, "a", Map.of());
        var stub = stub(daemon);
        int watchers = 60;
        StreamCopy[] copies = new StreamCopy[watchers];
        for (int round = 0; round < 2; round++) {
            List<Thread> threads = new ArrayList<>();
            java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.ConcurrentLinkedQueue<Throwable> failures = new java.util.concurrent
                    .ConcurrentLinkedQueue<>();
            for (int w = 0; w < watchers; w++) {
                int watcher = w;
                StreamCopy copy = round == 0 ? new StreamCopy() : copies[w];
                copies[w] = copy;
                ResumeToken token = round == 0 ? null : copy.token();
                Thread thread = new Thread(() -> {
                    try {
                        go.await();
                        watchFor(stub, copy, token, 3 * ENGINES + 10);
                    } catch (Throwable e) {
                        failures.add(new AssertionError("watcher " + watcher, e));
                    }
                });
                thread.start();
                threads.add(thread);
            }
            go.countDown();
            for (Thread thread : threads) {
                thread.join(120_000);
            }
            assertThat(failures).isEmpty();
            for (StreamCopy copy : copies) {
                assertThat(copy.starts).hasSize(round + 1);
                if (round == 1) {
                    assertThat(copy.lastStart().getEnginesSnapshotted()).isZero();
                }
            }
        }
        for (int e = 0; e < ENGINES; e++) {
            var counters = daemon.ingest().stream(e).counters();
            // A gap can happen on a loaded machine (it is replayed); a void would mean ingest lost batches.
            assertThat(counters.get(io.kvbroker.ingest.EngineCounters.Counter.VOIDS)).as("engine %d voids", e)
                    .isZero();
            assertThat(counters.get(io.kvbroker.ingest.EngineCounters.Counter.BATCHES)).isPositive();
        }
        assertThat(daemon.watch().counters().opened()).isEqualTo(2L * watchers);
    }

    /** Filters by model and by engine name: only those engines are announced, snapshotted and streamed. */
    @Test
    void filtersByModelAndByEngineKeepOthersOut() throws Exception {
        Simulator simulator = simulator(18);
        var stub = stub(broker(simulator, "a", Map.of()));
        StreamCopy byModel = new StreamCopy();
        watchForFiltered(stub, byModel, WatchRequest.newBuilder().addModels("sim/qwen-7b").build(), 60);
        assertThat(byModel.holdings.keySet()).containsExactlyInAnyOrder("sim-1/0", "sim-3/0", "sim-5/0");
        assertThat(byModel.lastStart().getEnginesSnapshotted()).isEqualTo(3);
        StreamCopy byName = new StreamCopy();
        watchForFiltered(stub, byName, WatchRequest.newBuilder().addEngines("sim-0/0").addEngines("sim-5/0")
                .build(), 40);
        assertThat(byName.holdings.keySet()).containsExactlyInAnyOrder("sim-0/0", "sim-5/0");
        assertThat(byName.batches).isPositive();
    }

    private static void watchForFiltered(KvIndexServiceGrpc.KvIndexServiceBlockingStub stub, StreamCopy copy,
            WatchRequest request, int messages) {
        io.grpc.Context.CancellableContext call = io.grpc.Context.current().withCancellation();
        try {
            call.run(() -> {
                Iterator<WatchResponse> stream = stub.withDeadlineAfter(60, TimeUnit.SECONDS).watch(request);
                for (int i = 0; i < messages && stream.hasNext(); i++) {
                    copy.apply(stream.next());
                }
            });
        } finally {
            call.cancel(null);
        }
    }

    /**
     * A watcher that never reads at all (it asks gRPC for no message): the server sends only what the transport's
     * window takes, then, once the ring has moved past it, ends it; a reading watcher beside it goes on, and the
     * broker's open-watcher count returns to that one.
     */
    @Test
    void aWatcherThatNeverReadsIsEndedWithoutHurtingAnother() throws Exception {
        Simulator simulator = simulator(19);
        BrokerDaemon daemon = broker(simulator, "a", Map.of("watch.bufferBatches", "1024"));
        var stub = stub(daemon);
        // Its own channel with HTTP/2's smallest window, so the server stops being able to send soon.
        ManagedChannel muteChannel = NettyChannelBuilder.forAddress("127.0.0.1", daemon.grpcPort()).usePlaintext()
                .flowControlWindow(65_535).build();
        open.add(() -> {
            muteChannel.shutdownNow();
            muteChannel.awaitTermination(5, TimeUnit.SECONDS);
        });
        io.grpc.ClientCall<WatchRequest, WatchResponse> mute = muteChannel.newCall(
                KvIndexServiceGrpc.getWatchMethod(), io.grpc.CallOptions.DEFAULT);
        Status[] muteEnd = new Status[1];
        mute.start(new io.grpc.ClientCall.Listener<>() {
            @Override
            public void onClose(Status status, io.grpc.Metadata trailers) {
                muteEnd[0] = status;
            }
        }, new io.grpc.Metadata());
        // No request(n): the client takes nothing, so the server's stream is never ready again once its window fills.
        mute.sendMessage(request(null));
        mute.halfClose();
        StreamCopy reader = new StreamCopy();
        io.grpc.Context.CancellableContext call = io.grpc.Context.current().withCancellation();
        try {
            call.run(() -> {
                Iterator<WatchResponse> stream = stub.watch(request(null));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (daemon.watch().counters().fellBehind() == 0 && System.nanoTime() < deadline) {
                    reader.apply(stream.next());
                }
                assertThat(daemon.watch().counters().fellBehind()).as("the mute watcher was ended").isOne();
                try {
                    Await.until("only the reading watcher is left", Duration.ofSeconds(30),
                            () -> daemon.watch().openWatchers() == 1);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                // The reader goes on after the mute one was ended.
                long before = reader.batches;
                while (reader.batches < before + 50) {
                    reader.apply(stream.next());
                }
            });
        } finally {
            call.cancel(null);
            mute.cancel("test over", null);
        }
        assertThat(reader.batches).isPositive();
    }

    @Test
    void badRequestsNameTheField() throws Exception {
        Simulator simulator = simulator(16);
        var stub = stub(broker(simulator, "a", Map.of()));
        assertInvalid(stub, WatchRequest.newBuilder().setResumeToken(com.google.protobuf.ByteString
                .copyFromUtf8("garbage!")).build(), "resume_token:");
        assertInvalid(stub, WatchRequest.newBuilder().addEngines("no-rank").build(), "engines[0]:");
    }

    private static void assertInvalid(KvIndexServiceGrpc.KvIndexServiceBlockingStub stub, WatchRequest request,
            String field) {
        StatusRuntimeException refused = org.junit.jupiter.api.Assertions.assertThrows(
                StatusRuntimeException.class, () -> stub.watch(request).hasNext());
        assertThat(refused.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
        assertThat(refused.getStatus().getDescription()).startsWith(field);
    }
}
