package io.kvbroker.ingest;

import static io.kvbroker.testing.HandEngineSockets.send;
import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.net.AddressBlock;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.sim.Workload;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Listen mode: engines connect to kvbroker (vLLM does when its endpoint has no '*'), rank r to the listening port +
 * r, and are told apart by (topic, rank). Two pods with two data-parallel ranks each, over real sockets.
 */
class ListenModeIngestTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(300, 3, 60_000, 100_000, 1_000);

    private static SimulatedEngine.Options options(String host, int rank, String topic, long seed) {
        return new SimulatedEngine.Options(host, rank, "sim/m", topic, rank == 0 ? KvEventEncoder.Form.MAP
                : KvEventEncoder.Form.ARRAY, 10_000, 1_000, Workload.Shape.typical(false), seed);
    }

    @Test
    void twoPodsWithTwoRanksEachAreToldApartByTopicAndRank() throws Exception {
        int listenPort = Ports.freeRange(2);
        int replayPort = Ports.freeRange(2);
        int sharedReplay = Ports.freeRange(2);
        List<Function<ZContext, SimulatedEngine>> engines = new ArrayList<>();
        for (String host : List.of("127.0.0.1", "127.0.0.2")) {
            for (int rank = 0; rank < 2; rank++) {
                SimulatedEngine.Options o = options(host, rank, "kv@" + host + "@sim/m", 100 + engines.size());
                int r = rank;
                engines.add(c -> new SimulatedEngine(c, o, "tcp://127.0.0.1:" + (listenPort + r), o.pod(), 0,
                        replayPort + r));
            }
        }
        // An engine without a topic, and two engines sharing one topic at rank 0: neither can be told apart.
        SimulatedEngine.Options untagged = options("127.0.0.3", 0, "", 7);
        engines.add(c -> new SimulatedEngine(c, untagged, "tcp://127.0.0.1:" + listenPort, "127.0.0.3", 0, 0));
        for (int twin = 0; twin < 2; twin++) {
            SimulatedEngine.Options shared = options("127.0.0.4", 0, "kv@127.0.0.4@sim/m", 8 + twin);
            int port = sharedReplay + twin;
            engines.add(c -> new SimulatedEngine(c, shared, "tcp://127.0.0.1:" + listenPort, "127.0.0.4", 0, port));
        }

        EngineRegistry registry = new EngineRegistry();
        RecordingSink sink = new RecordingSink();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS,
                new ListenSettings("127.0.0.1", listenPort, 2, replayPort), 100_000, 50, System::currentTimeMillis);
        ingest.start();
        try (Simulator simulator = new Simulator(40, engines).start()) {
            List<EngineKey> keys = List.of(new EngineKey("127.0.0.1", 0), new EngineKey("127.0.0.1", 1),
                    new EngineKey("127.0.0.2", 0), new EngineKey("127.0.0.2", 1));
            await("four engines admitted and live", () -> keys.stream().allMatch(key -> registry.find(key)
                    .map(e -> ingest.stream(e.id()) != null && ingest.stream(e.id()).cursor() > 20).orElse(false)));
            await("the shared topic refused", () -> ingest.refusedSharedTopic() == 1);
            simulator.setStepping(false);
            await("caught up", () -> simulator.call(all -> {
                for (int i = 0; i < keys.size(); i++) {
                    int id = registry.find(keys.get(i)).orElseThrow().id();
                    if (ingest.stream(id).cursor() != all.get(i).nextSequence() - 1) {
                        return false;
                    }
                }
                return true;
            }));
            for (int i = 0; i < keys.size(); i++) {
                EngineRegistry.Entry entry = registry.find(keys.get(i)).orElseThrow();
                int rank = keys.get(i).rank();
                assertThat(entry.spec().topic()).isEqualTo("kv@" + keys.get(i).pod() + "@sim/m");
                assertThat(entry.spec().model()).isEqualTo("sim/m");
                assertThat(entry.spec().replayEndpoint().orElseThrow().toString())
                        .isEqualTo("tcp://" + keys.get(i).pod() + ":" + (replayPort + rank));
                int index = i;
                long published = simulator.call(all -> all.get(index).nextSequence());
                // What the engine published before its PUB connected came through the first-contact replay.
                assertThat(sink.sequencesSinceLastReset(entry.id())).as(keys.get(i).toString())
                        .containsExactlyElementsOf(LongStream.range(0, published).boxed().toList());
                assertThat(ingest.stream(entry.id()).incarnation()).isOne();
            }
            assertThat(ingest.refusedEmptyTopic()).isPositive();
            assertThat(registry.find(new EngineKey("127.0.0.4", 0))).isEmpty();
            assertThat(registry.live()).hasSize(4);
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    @Test
    void topicsOutsideTheAllowListAreCountedAndKeptOutOfTheIndex() throws Exception {
        int listenPort = Ports.freeRange(1);
        int replayPort = Ports.freeRange(1);
        List<Function<ZContext, SimulatedEngine>> engines = new ArrayList<>();
        SimulatedEngine.Options allowed = options("127.0.0.1", 0, "kv@127.0.0.1@sim/m", 1);
        engines.add(c -> new SimulatedEngine(c, allowed, "tcp://127.0.0.1:" + listenPort, "127.0.0.1", 0,
                replayPort));
        SimulatedEngine.Options stranger = options("127.0.0.5", 0, "kv@127.0.0.5@other/m", 2);
        engines.add(c -> new SimulatedEngine(c, stranger, "tcp://127.0.0.1:" + listenPort, "127.0.0.5", 0, 0));

        EngineRegistry registry = new EngineRegistry();
        RecordingSink sink = new RecordingSink();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, new ListenSettings("127.0.0.1", listenPort, 1,
                replayPort, List.of("kv@*@sim/m"), List.of()), 100_000, 50, System::currentTimeMillis);
        ingest.start();
        try (Simulator simulator = new Simulator(40, engines).start()) {
            EngineKey key = new EngineKey("127.0.0.1", 0);
            await("the allowed engine live", () -> registry.find(key).map(e -> ingest.stream(e.id()) != null
                    && ingest.stream(e.id()).cursor() > 20).orElse(false));
            await("the unknown topic refused", () -> ingest.refusedUnknownTopic() > 20);
            assertThat(registry.live()).extracting(entry -> entry.spec().key()).containsExactly(key);
            assertThat(sink.events.keySet()).containsExactly(registry.find(key).orElseThrow().id());
            assertThat(ingest.refusedUnknownAddress()).isZero();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    @Test
    void publishersOutsideTheAllowedAddressesAreCountedAndIgnored() throws Exception {
        int listenPort = Ports.freeRange(1);
        SimulatedEngine.Options engine = options("127.0.0.1", 0, "kv@127.0.0.1@sim/m", 3);
        List<Function<ZContext, SimulatedEngine>> engines = List.of(
                c -> new SimulatedEngine(c, engine, "tcp://127.0.0.1:" + listenPort, "127.0.0.1", 0, 0));

        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, new RecordingSink(), LIMITS, new ListenSettings("127.0.0.1",
                listenPort, 1, 0, List.of(), List.of(AddressBlock.parse("10.0.0.0/8"))), 100_000, 50,
                System::currentTimeMillis);
        ingest.start();
        try (Simulator simulator = new Simulator(40, engines).start()) {
            // The engine connects from loopback, which the list leaves out.
            await("the publisher refused", () -> ingest.refusedUnknownAddress() > 20);
            assertThat(registry.live()).isEmpty();
            assertThat(ingest.refusedUnknownTopic()).isZero();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * Topics that do not follow llm-d's {@code kv@HOST@MODEL} (free text, a lone "kv@", characters a topic rarely
     * has): each engine is still told apart by its whole topic, with no model and no replay address (nothing to
     * derive them from), its batches applied as they come; the well-named engine beside them is unaffected.
     */
    @Test
    void topicsThatDoNotParseNameTheirEngineByTheWholeTopic() throws Exception {
        int listenPort = Ports.freeRange(1);
        int replayPort = Ports.freeRange(1);
        List<String> odd = List.of("not-a-kv-topic", "kv@", "kv@@m", "späť/\\ 😀");
        List<Function<ZContext, SimulatedEngine>> engines = new ArrayList<>();
        SimulatedEngine.Options good = options("127.0.0.1", 0, "kv@127.0.0.1@sim/m", 200);
        engines.add(c -> new SimulatedEngine(c, good, "tcp://127.0.0.1:" + listenPort, "127.0.0.1", 0, replayPort));
        for (int i = 0; i < odd.size(); i++) {
            SimulatedEngine.Options o = options("127.0.0.9", 0, odd.get(i), 201 + i);
            engines.add(c -> new SimulatedEngine(c, o, "tcp://127.0.0.1:" + listenPort, "127.0.0.9", 0, 0));
        }
        EngineRegistry registry = new EngineRegistry();
        RecordingSink sink = new RecordingSink();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS,
                new ListenSettings("127.0.0.1", listenPort, 1, replayPort), 100_000, 50, System::currentTimeMillis);
        ingest.start();
        try (Simulator simulator = new Simulator(40, engines).start()) {
            await("every engine admitted and applying", () -> registry.live().size() == 1 + odd.size()
                    && registry.live().stream().allMatch(e -> ingest.stream(e.id()) != null
                            && ingest.stream(e.id()).cursor() > 10));
            for (String topic : odd) {
                EngineRegistry.Entry entry = registry.live().stream().filter(e -> e.spec().topic().equals(topic))
                        .findFirst().orElseThrow(() -> new AssertionError("no engine for topic " + topic));
                assertThat(entry.spec().model()).as(topic).isEmpty();
                assertThat(entry.spec().replayEndpoint()).as(topic).isEmpty();
                assertThat(ingest.stream(entry.id()).counters().get(Counter.DECODE_ERRORS)).as(topic).isZero();
            }
            EngineRegistry.Entry named = registry.find(new EngineKey("127.0.0.1", 0)).orElseThrow();
            assertThat(named.spec().model()).isEqualTo("sim/m");
            assertThat(ingest.stream(named.id()).counters().get(Counter.VOIDS)).isZero();
            assertThat(sink.sequencesSinceLastReset(named.id())).isNotEmpty();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * A listening engine's process restarts: its PUB connects again and publishes from 0. With a replay port the
     * broker replays the new process from 0; without one (vLLM's default) the first batch, below the cursor, is the
     * new process: in both, a new incarnation holding exactly the new process's batches.
     */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void anEngineThatRestartsAndConnectsAgainIsANewIncarnation(boolean replay) throws Exception {
        int listenPort = Ports.freeRange(1);
        int replayPort = replay ? Ports.freeRange(1) : 0;
        SimulatedEngine.Options o = options("127.0.0.1", 0, "kv@127.0.0.1@sim/m", 300);
        EngineRegistry registry = new EngineRegistry();
        RecordingSink sink = new RecordingSink();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS,
                new ListenSettings("127.0.0.1", listenPort, 1, replayPort), 100_000, 50, System::currentTimeMillis);
        ingest.start();
        Simulator simulator = new Simulator(40, List.of(
                c -> new SimulatedEngine(c, o, "tcp://127.0.0.1:" + listenPort, "127.0.0.1", 0, replayPort)));
        simulator.setStepping(false);
        try (simulator) {
            simulator.start();
            await("subscribed", () -> simulator.call(engines -> engines.get(0).subscriptions()) >= 1);
            step(simulator, 12);
            await("admitted and applied", () -> registry.find(new EngineKey("127.0.0.1", 0))
                    .map(entry -> ingest.stream(entry.id())).map(stream -> stream.cursor() == 11).orElse(false));
            int id = registry.find(new EngineKey("127.0.0.1", 0)).get().id();
            assertThat(registry.entry(id).spec().replayEndpoint().isPresent()).isEqualTo(replay);
            simulator.call(engines -> {
                engines.get(0).goAway();
                engines.get(0).restart();
                engines.get(0).comeBack();
                return null;
            });
            await("subscribed again", () -> simulator.call(engines -> engines.get(0).subscriptions()) >= 1);
            step(simulator, 3);
            await("the new process applied", () -> ingest.stream(id).incarnation() == 2
                    && ingest.stream(id).cursor() == 2);
            List<Double> published = simulator.call(engines -> new ArrayList<>(engines.get(0).publishedTimestamps()));
            assertThat(sink.timestampsSinceLastReset(id)).isEqualTo(published);
            assertThat(ingest.stream(id).counters().get(Counter.RESTARTS_BY_SEQUENCE)).isOne();
            assertThat(ingest.stream(id).historyPartial()).isFalse();
            assertThat(ingest.refusedSharedTopic()).isZero();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    @Test
    void malformedMessagesFromUnknownTopicsAndMessagesUnderARefusedSharedTopicAreCounted() throws Exception {
        int listenPort = Ports.freeRange(1);
        int sharedReplay = Ports.freeRange(2);
        List<Function<ZContext, SimulatedEngine>> engines = new ArrayList<>();
        for (int twin = 0; twin < 2; twin++) {
            SimulatedEngine.Options shared = options("127.0.0.4", 0, "kv@127.0.0.4@sim/m", 20 + twin);
            int port = sharedReplay + twin;
            engines.add(c -> new SimulatedEngine(c, shared, "tcp://127.0.0.1:" + listenPort, "127.0.0.4", 0, port));
        }
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, new RecordingSink(), LIMITS,
                new ListenSettings("127.0.0.1", listenPort, 1, 0), 100_000, 50, System::currentTimeMillis);
        ingest.start();
        try (ZContext zmq = new ZContext(); Simulator simulator = new Simulator(40, engines).start()) {
            // An XPUB hears the listening SUB's subscription once connected, so nothing sent after it is lost.
            ZMQ.Socket pub = zmq.createSocket(SocketType.XPUB);
            pub.setLinger(0);
            pub.connect("tcp://127.0.0.1:" + listenPort);
            await("the listening socket subscribed", () -> {
                byte[] subscription = pub.recv(ZMQ.DONTWAIT);
                return subscription != null && subscription.length > 0 && subscription[0] == 1;
            });
            byte[] topic = "kv@junk@m".getBytes(StandardCharsets.UTF_8);
            byte[] payload = {(byte) 0x90};
            int rounds = 5;
            for (int i = 0; i < rounds; i++) {
                // One frame, two frames, a sequence frame of 3 bytes, four frames: none parses.
                send(pub, topic);
                send(pub, topic, WireFrames.sequenceFrame(i));
                send(pub, topic, new byte[3], payload);
                send(pub, topic, WireFrames.sequenceFrame(i), payload, payload);
            }
            await("every malformed message counted", () -> ingest.refusedMalformed() >= 4L * rounds);
            await("the shared topic refused", () -> ingest.refusedSharedTopic() == 1);
            long refusedAt = ingest.refusedSharedTopicMessages();
            await("the twins' later messages refused", () -> ingest.refusedSharedTopicMessages() > refusedAt + 20);
            assertThat(ingest.refusedMalformed()).as("malformed, each once").isEqualTo(4L * rounds);
            assertThat(registry.live()).as("no engine admitted for the shared topic or the junk").isEmpty();
            assertThat(ingest.refusedUnknownTopic()).isZero();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    private static void step(Simulator simulator, int batches) {
        simulator.call(engines -> {
            for (int i = 0; i < batches; i++) {
                engines.get(0).step();
            }
            return null;
        });
    }

    /** Every wait in this class has the same deadline. */
    private static void await(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
        Await.until(what, Duration.ofSeconds(30), condition);
    }
}
