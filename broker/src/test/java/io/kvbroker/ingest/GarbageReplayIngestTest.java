package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import io.kvbroker.testing.SimulatedBrokers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * An engine whose replay ROUTER answers every request with garbage (wrong frame counts, a bad delimiter, a short
 * sequence frame, and a batch that is no msgpack) beside a well-behaved simulated engine: the garbage is counted as
 * decode errors, the replay is asked again and then given up on (the missing batches voided, as for an engine that
 * cannot replay), the bad engine goes on live, and the good engine loses nothing.
 */
class GarbageReplayIngestTest {
    private static final byte[] EMPTY = new byte[0];

    @Test
    void garbageRepliesAreCountedTheReplayIsGivenUpCleanlyAndOtherEnginesAreUnaffected(@TempDir Path dir)
            throws Exception {
        int pubPort = Ports.freeRange(1);
        int routerPort = Ports.freeRange(1);
        byte[] valid = new KvEventEncoder().encode(new KvEventBatch(1.0, 0, List.of(AllBlocksCleared.ALL), 0, 0),
                KvEventEncoder.Form.MAP);
        byte[] topic = "kv@bad@m".getBytes(StandardCharsets.UTF_8);
        try (Simulator simulator = new Simulator(Simulator.fleet(1, 41), 0, 100).start();
                ZContext zmq = new ZContext()) {
            ZMQ.Socket pub = zmq.createSocket(SocketType.PUB);
            pub.bind("tcp://127.0.0.1:" + pubPort);
            ZMQ.Socket router = zmq.createSocket(SocketType.ROUTER);
            router.bind("tcp://127.0.0.1:" + routerPort);
            BrokerDaemon daemon = SimulatedBrokers.start(simulator, dir, "broker",
                    Map.of("ingest.replayTimeoutMs", "200"), SimulatedBrokers.engine("bad", "m", "kv@bad@m",
                            "tcp://127.0.0.1:" + pubPort, "tcp://127.0.0.1:" + routerPort));
            try {
                // The ingest thread creates the engines' streams shortly after start.
                Await.until("both engines' streams exist", java.time.Duration.ofSeconds(30),
                        () -> daemon.ingest().stream(0) != null && daemon.ingest().stream(1) != null);
                EngineStream goodStream = daemon.ingest().stream(0);
                EngineStream badStream = daemon.ingest().stream(1);
                long sequence = 5;
                int requests = 0;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                // The engine publishes from sequence 5 on: the broker asks it for 0..4, and gets garbage each time.
                while (badStream.cursor() < 40) {
                    assertThat(System.nanoTime()).as("the bad engine went on live; cursor %d, state %s",
                            badStream.cursor(), badStream.state()).isLessThan(deadline);
                    pub.sendMore(topic);
                    pub.sendMore(WireFrames.sequenceFrame(sequence++));
                    pub.send(valid);
                    // Publishing and answering replay requests as they come is the scenario; the sleep paces it.
                    byte[] identity;
                    while ((identity = router.recv(ZMQ.DONTWAIT)) != null) {
                        while (router.hasReceiveMore()) {
                            router.recv(0);
                        }
                        requests++;
                        answerWithGarbage(router, identity, topic);
                    }
                    Thread.sleep(20);
                }
                EngineCounters bad = badStream.counters();
                assertThat(requests).as("replay requests the bad engine received").isGreaterThanOrEqualTo(2);
                assertThat(bad.get(Counter.DECODE_ERRORS)).as("garbage replies counted").isGreaterThanOrEqualTo(4);
                assertThat(bad.get(Counter.VOIDS)).as("the missing batches 1..4 voided once").isOne();
                assertThat(badStream.state()).isEqualTo(EngineState.LIVE);
                long goodCursor = goodStream.cursor();
                Await.until("the good engine goes on", java.time.Duration.ofSeconds(60),
                        () -> goodStream.cursor() >= goodCursor + 50);
                EngineCounters goodCounters = goodStream.counters();
                assertThat(goodCounters.get(Counter.DECODE_ERRORS)).isZero();
                assertThat(goodCounters.get(Counter.VOIDS)).isZero();
                System.out.printf("garbage replay: %d requests answered with garbage, %d decode errors, %d voids;"
                        + " good engine at sequence %d with no loss%n", requests, bad.get(Counter.DECODE_ERRORS),
                        bad.get(Counter.VOIDS), goodStream.cursor());
            } finally {
                daemon.stop();
            }
        }
    }

    /** Replies a DEALER cannot make sense of, then a well-framed batch 0 whose payload is no msgpack; no end marker. */
    private static void answerWithGarbage(ZMQ.Socket router, byte[] identity, byte[] topic) {
        send(router, identity, EMPTY);
        send(router, identity, "x".getBytes(StandardCharsets.UTF_8), topic, WireFrames.sequenceFrame(0), EMPTY);
        send(router, identity, EMPTY, topic, new byte[] {1, 2, 3}, EMPTY);
        send(router, identity, EMPTY, topic, WireFrames.sequenceFrame(0), new byte[] {(byte) 0xc1, 0x00});
    }

    private static void send(ZMQ.Socket router, byte[] identity, byte[]... frames) {
        router.send(identity, ZMQ.SNDMORE | ZMQ.DONTWAIT);
        for (int i = 0; i < frames.length; i++) {
            router.send(frames[i], (i < frames.length - 1 ? ZMQ.SNDMORE : 0) | ZMQ.DONTWAIT);
        }
    }
}
