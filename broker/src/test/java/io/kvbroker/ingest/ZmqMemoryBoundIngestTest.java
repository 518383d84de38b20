package io.kvbroker.ingest;

import static io.kvbroker.testing.HandEngineSockets.send;
import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.WireFrames;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.HandEngineSockets;
import io.kvbroker.testing.Ports;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * ZeroMQ's memory bounds over real sockets, beside a well-behaved simulated engine: a frame over
 * {@code ingest.maxMessageBytes} costs the sender its connection (counted, and connected again) and nothing else,
 * and floods of large frames on the live and the replay socket pass through while every one is counted (the heap's
 * peak is printed, not asserted: in the test JVM it mostly measures when the collector ran).
 * Issue 16 item 5: one 89 MB batch took the RSS from 435 to 867 MB; 1 MiB replies on the unbounded replay queue filled
 * a 512 MB heap.
 */
class ZmqMemoryBoundIngestTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(1_000, 3, 60_000, 100_000, 10_000);
    private static final long MAX_MESSAGE_BYTES = 1_048_576;
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final byte[] EMPTY = new byte[0];
    private static final byte[] TOPIC = "kv@big@m".getBytes(StandardCharsets.UTF_8);
    /** A valid batch: {@code [ts, []]}. */
    private static final byte[] VALID = {(byte) 0x92, (byte) 0xcb, 0x41, (byte) 0xda, 0, 0, 0, 0, 0, 0, (byte) 0x90};

    @Test
    void anOversizedMessageDropsOnlyItsSendersConnectionAndIsCounted() throws Exception {
        try (Harness h = new Harness(false)) {
            long sequence = h.goLive();
            // 2 MiB of a batch that would be valid: ZeroMQ reads the frame's size and drops the connection.
            byte[] oversized = new byte[2 * (int) MAX_MESSAGE_BYTES];
            send(h.pub, TOPIC, WireFrames.sequenceFrame(sequence++), oversized);
            Await.until("the oversized message's connection dropped and connected again", WAIT,
                    () -> h.big().counters().get(Counter.PROTOCOL_DROPS) == 1);
            // The SUB reconnects; the engine goes on publishing and is heard again (the lost batch is a gap).
            long last = h.publishUntilApplied(sequence);
            EngineCounters big = h.big().counters();
            assertThat(big.get(Counter.DECODE_ERRORS)).as("the oversized message never arrived").isZero();
            assertThat(big.get(Counter.DISCONNECTIONS)).isEqualTo(1);
            assertThat(big.get(Counter.CONNECTIONS)).as("reconnected").isEqualTo(2);
            assertThat(h.big().cursor()).isEqualTo(last);
            h.assertGoodEngineExact();
        }
    }

    @Test
    void floodsOfLargeFramesOnTheLiveAndReplaySocketsAreCountedAndHarmNoOtherEngine() throws Exception {
        try (Harness h = new Harness(true)) {
            long sequence = h.goLive();
            List<MemoryPoolMXBean> heap = new ArrayList<>();
            for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
                if (pool.getType() == MemoryType.HEAP) {
                    pool.resetPeakUsage();
                    heap.add(pool);
                }
            }
            // Frames just under the limit: one array reused, so the sender holds 1 MiB whatever it queues.
            byte[] large = new byte[(int) MAX_MESSAGE_BYTES - 1024];
            large[0] = (byte) 0xc1;
            int flood = 400;
            for (int i = 0; i < flood; i++) {
                send(h.pub, TOPIC, WireFrames.sequenceFrame(sequence++), large);
                send(h.router, h.dealer, EMPTY, TOPIC, WireFrames.sequenceFrame(i), large);
            }
            long last = h.publishUntilApplied(sequence);
            EngineCounters big = h.big().counters();
            long peakMb = heap.stream().mapToLong(pool -> pool.getPeakUsage().getUsed()).sum() >> 20;
            System.out.printf("flood of %d + %d frames of 1 MiB: heap peak %d MiB; %d decode errors, %d stale replies"
                    + ", %d disconnects%n", flood, flood, peakMb, big.get(Counter.DECODE_ERRORS),
                    big.get(Counter.STALE_REPLIES), big.get(Counter.DISCONNECTIONS));
            assertThat(h.big().cursor()).isEqualTo(last);
            // Live frames: none lost (each at the next sequence, applied, refused); replies: any the DEALER's mark
            // held back were dropped by the engine's ROUTER, never queued here.
            assertThat(big.get(Counter.DECODE_ERRORS)).as("every live frame counted, replies at most once")
                    .isBetween((long) flood, 2L * flood);
            assertThat(big.get(Counter.VOIDS)).isZero();
            h.assertGoodEngineExact();
        }
    }

    /** The ingest under test, one simulated engine (good) and one engine driven by hand (big). */
    private static final class Harness implements AutoCloseable {
        final RecordingSink sink = new RecordingSink();
        final EngineRegistry registry = new EngineRegistry();
        final ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50, 500,
                MAX_MESSAGE_BYTES, System::currentTimeMillis);
        final Simulator simulator = new Simulator(Simulator.fleet(1, 29), 0, 100);
        final ZContext zmq = new ZContext();
        final ZMQ.Socket pub = zmq.createSocket(SocketType.PUB);
        final ZMQ.Socket router = zmq.createSocket(SocketType.ROUTER);
        final boolean withReplay;
        final int good;
        final int bigId;
        byte[] dealer;

        Harness(boolean withReplay) {
            this.withReplay = withReplay;
            int pubPort = Ports.freeRange(1);
            int routerPort = Ports.freeRange(1);
            pub.setSndHWM(100_000);
            pub.bind("tcp://127.0.0.1:" + pubPort);
            router.bind("tcp://127.0.0.1:" + routerPort);
            simulator.start();
            good = registry.register(simulator.specs().get(0));
            bigId = registry.register(new EngineSpec(new EngineKey("big", 0), "m",
                    new Endpoint("tcp", "127.0.0.1", pubPort), withReplay
                            ? Optional.of(new Endpoint("tcp", "127.0.0.1", routerPort)) : Optional.empty(),
                    "kv@big@m"));
            ingest.start();
        }

        EngineStream big() {
            return ingest.stream(bigId);
        }

        /** Publishes valid batches (answering replays) until the engine is live at the last; returns the next. */
        long goLive() throws InterruptedException {
            return publishUntilApplied(0) + 1;
        }

        long publishUntilApplied(long sequence) throws InterruptedException {
            for (int attempt = 0; ; attempt++) {
                send(pub, TOPIC, WireFrames.sequenceFrame(sequence), VALID);
                answer();
                long deadline = System.currentTimeMillis() + 200;
                while (System.currentTimeMillis() < deadline) {
                    EngineStream stream = big();
                    if (stream != null && stream.state() == EngineState.LIVE && stream.cursor() == sequence
                            && (!withReplay || dealer != null)) {
                        return sequence;
                    }
                    answer();
                    // A poll that must answer replay requests between reads, so not an Await: it is the engine.
                    Thread.sleep(10);
                }
                assertThat(attempt).as("the big engine is heard").isLessThan(100);
                sequence++;
            }
        }

        /** Answers replay requests as an engine with an empty buffer: the end marker at once. */
        void answer() {
            dealer = HandEngineSockets.answerEmpty(router, TOPIC, dealer);
        }


        void assertGoodEngineExact() throws InterruptedException {
            simulator.setStepping(false);
            long published = simulator.call(engines -> engines.get(0).nextSequence()) - 1;
            Await.until("the good engine applied all it published", WAIT,
                    () -> ingest.stream(good).cursor() == published);
            sink.assertExactly(good, simulator.call(engines -> new ArrayList<>(engines.get(0)
                    .publishedTimestamps())), "good engine");
            EngineCounters counters = ingest.stream(good).counters();
            assertThat(counters.get(Counter.DECODE_ERRORS)).isZero();
            assertThat(counters.get(Counter.VOIDS)).isZero();
            assertThat(counters.get(Counter.DISCONNECTIONS)).isZero();
        }

        @Override
        public void close() throws Exception {
            ingest.stop(Duration.ofSeconds(5));
            zmq.close();
            simulator.close();
        }
    }
}
