package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.MalformedMessageException.Reason;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.HandEngineSockets;
import io.kvbroker.testing.Ports;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Over real ZeroMQ, a replay ROUTER that answers every request the same unsatisfying way (a hole in the middle, or a
 * stray batch at 2^63 - 1 among real ones): the broker asks at most the attempt limit more times, not at round-trip
 * speed for ever, and ends LIVE with every batch it could have though its publisher has gone. Issue 16, part C.
 */
class ReplayStormIngestTest {
    private static final int MAX_ATTEMPTS = 3;
    private static final EngineStream.Limits LIMITS =
            new EngineStream.Limits(1_000, MAX_ATTEMPTS, 60_000, 100_000, 10_000, 50);
    private static final int BUFFERED = 10;
    private static final long HOLE = 5;
    private static final byte[] EMPTY = new byte[0];
    private static final byte[] TOPIC = "kv@storm@m".getBytes(java.nio.charset.StandardCharsets.UTF_8);

    @ParameterizedTest(name = "answer with {0}")
    @ValueSource(strings = {"hole", "stray"})
    void anUnsatisfyingAnswerIsAskedAgainAtMostTheAttemptLimit(String answer) throws Exception {
        int pubPort = Ports.freeRange(1);
        int routerPort = Ports.freeRange(1);
        byte[] payload = new KvEventEncoder().encode(new KvEventBatch(1.0, 0, List.of(AllBlocksCleared.ALL), 0, 0),
                KvEventEncoder.Form.MAP);
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, IngestSink.NONE, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (ZContext zmq = new ZContext()) {
            ZMQ.Socket pub = HandEngineSockets.bound(zmq, SocketType.PUB, pubPort);
            ZMQ.Socket router = HandEngineSockets.bound(zmq, SocketType.ROUTER, routerPort);
            router.setReceiveTimeOut(20);
            int id = registry.register(new EngineSpec(new EngineKey("storm", 0), "m",
                    new Endpoint("tcp", "127.0.0.1", pubPort),
                    Optional.of(new Endpoint("tcp", "127.0.0.1", routerPort)), ""));
            ingest.start();
            try {
                Await.until("the engine's stream", Duration.ofSeconds(30), () -> ingest.stream(id) != null);
                EngineStream stream = ingest.stream(id);
                // Counted over a fixed window long enough for dozens of round trips at the replay timeout: the old
                // code asked hundreds of times a second here.
                int requests = 0;
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
                while (System.nanoTime() < end) {
                    byte[] identity = router.recv(0);
                    if (identity == null) {
                        continue;
                    }
                    while (router.hasReceiveMore()) {
                        router.recv(0);
                    }
                    requests++;
                    if (requests == 1) {
                        // The publisher leaves once it was heard; its replay ROUTER stays and keeps answering.
                        zmq.destroySocket(pub);
                    }
                    for (long seq : answer.equals("hole") ? holed() : withStray()) {
                        send(router, identity, EMPTY, TOPIC, WireFrames.sequenceFrame(seq), payload);
                    }
                    send(router, identity, EMPTY, TOPIC, WireFrames.sequenceFrame(WireFrames.END_OF_REPLAY), EMPTY);
                }
                EngineCounters counters = stream.counters();
                long timeouts = counters.get(Counter.REPLAY_TIMEOUTS);
                System.out.printf("replay answered with a %s: %d requests in 3 s (%d timed out), state %s, cursor %d,"
                        + " lost %d%n", answer, requests, timeouts, stream.state(), stream.cursor(),
                        counters.get(Counter.UNKNOWN_HISTORY_BATCHES));
                // A request whose answer is slow on a loaded machine times out and is asked again: that one is
                // allowed for, the storm is not.
                assertThat(requests).as("requests: the first, then at most the attempt limit (%d timed out)", timeouts)
                        .isBetween(1, 1 + MAX_ATTEMPTS + (int) timeouts);
                assertThat(timeouts).isLessThanOrEqualTo(MAX_ATTEMPTS);
                assertThat(stream.cursor()).isEqualTo(BUFFERED - 1);
                assertThat(stream.state()).isIn(EngineState.LIVE, EngineState.VOID);
                if (answer.equals("hole")) {
                    assertThat(counters.get(Counter.UNKNOWN_HISTORY_BATCHES)).isOne();
                } else {
                    assertThat(counters.get(Counter.UNKNOWN_HISTORY_BATCHES)).isZero();
                    assertThat(counters.decodeErrors(Reason.IMPLAUSIBLE_SEQUENCE)).isPositive();
                    assertThat(stream.lastHeardSequence()).isEqualTo(BUFFERED - 1);
                }

                // Every request the broker counted reached the ROUTER: none is still waiting to go out.
                assertThat(counters.get(Counter.REPLAYS_REQUESTED)).isEqualTo(requests);
            } finally {
                ingest.stop(Duration.ofSeconds(5));
            }
        }
    }

    /** The buffer 0..9 without batch 5. */
    private static List<Long> holed() {
        List<Long> sequences = new ArrayList<>();
        for (long seq = 0; seq < BUFFERED; seq++) {
            if (seq != HOLE) {
                sequences.add(seq);
            }
        }
        return sequences;
    }

    /** The buffer 0..9 with a stray 2^63 - 1 in the middle. */
    private static List<Long> withStray() {
        List<Long> sequences = new ArrayList<>();
        for (long seq = 0; seq < BUFFERED; seq++) {
            if (seq == HOLE) {
                sequences.add(Long.MAX_VALUE);
            }
            sequences.add(seq);
        }
        return sequences;
    }

    private static void send(ZMQ.Socket router, byte[] identity, byte[]... frames) {
        router.send(identity, ZMQ.SNDMORE);
        for (int i = 0; i < frames.length; i++) {
            router.send(frames[i], i < frames.length - 1 ? ZMQ.SNDMORE : 0);
        }
    }
}
