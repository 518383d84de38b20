package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.MalformedMessageException.Reason;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.HandEngineSockets;
import io.kvbroker.testing.Ports;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Garbage of every kind from one engine over real ZeroMQ, on its live socket and (when it has one) its replay socket,
 * one of them 5 MB: every message is counted exactly once as a decode error, by reason, whether it was applied,
 * dropped for its sequence (a reply nobody asked for) or never parsed. Issue 16 item 6: 750 garbage messages counted
 * 230, and garbage on the replay socket none.
 */
class GarbageCountIngestTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(1_000, 3, 60_000, 100_000, 10_000);
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final byte[] EMPTY = new byte[0];
    private static final byte[] TOPIC = "kv@garbage@m".getBytes(StandardCharsets.UTF_8);
    /** A valid batch: {@code [ts, []]}. */
    private static final byte[] VALID = {(byte) 0x92, (byte) 0xcb, 0x41, (byte) 0xda, 0, 0, 0, 0, 0, 0, (byte) 0x90};
    private static final byte[] INVALID_BYTE = {(byte) 0xc1};
    private static final byte[] NOT_AN_ARRAY = "garbage".getBytes(StandardCharsets.UTF_8);
    private static final byte[] TRUNCATED = {(byte) 0x93, (byte) 0xcb, 0x41};
    /** 5 MB that declare an array longer than themselves. */
    private static final byte[] LARGE = large();

    @ParameterizedTest(name = "with replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void everyGarbageMessageIsCountedOnceByReason(boolean withReplay) throws Exception {
        int pubPort = Ports.freeRange(1);
        int routerPort = Ports.freeRange(1);
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, IngestSink.NONE, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (ZContext zmq = new ZContext()) {
            ZMQ.Socket pub = HandEngineSockets.bound(zmq, SocketType.PUB, pubPort);
            ZMQ.Socket router = HandEngineSockets.bound(zmq, SocketType.ROUTER, routerPort);
            Optional<Endpoint> replay = withReplay ? Optional.of(new Endpoint("tcp", "127.0.0.1", routerPort))
                    : Optional.empty();
            int id = registry.register(new EngineSpec(new EngineKey("garbage", 0), "m",
                    new Endpoint("tcp", "127.0.0.1", pubPort), replay, "kv@garbage@m"));
            ingest.start();

            // Publish valid batches (and answer replays as an engine would) until the engine is live and caught up.
            long sequence = 0;
            byte[] dealer = null;
            while (true) {
                EngineStream stream = ingest.stream(id);
                if (stream != null && stream.state() == EngineState.LIVE && stream.cursor() == sequence - 1
                        && (!withReplay || dealer != null)) {
                    break;
                }
                assertThat(sequence).as("the engine goes live").isLessThan(1_000);
                send(pub, TOPIC, seq(sequence++), VALID);
                byte[] asked = answer(router, sequence);
                dealer = asked != null ? asked : dealer;
                // Pacing: the engine publishes until the broker hears it (a SUB joins late), not a wait for state.
                Thread.sleep(20);
            }
            int garbage = 0;
            if (withReplay) {
                // Replies nobody asked for, with bad payloads, and replies whose frames are wrong.
                garbage += send(router, dealer, EMPTY, TOPIC, seq(1), INVALID_BYTE);
                garbage += send(router, dealer, EMPTY, TOPIC, seq(2), NOT_AN_ARRAY);
                garbage += send(router, dealer, EMPTY, seq(3), TRUNCATED);
                garbage += send(router, dealer, EMPTY, TOPIC, seq(4), LARGE);
                garbage += send(router, dealer, EMPTY, TOPIC);
                garbage += send(router, dealer, EMPTY, TOPIC, seq(1), VALID, VALID, VALID);
                garbage += send(router, dealer, TOPIC, TOPIC, seq(1), VALID);
                garbage += send(router, dealer, EMPTY, TOPIC, new byte[5], VALID);
            }
            garbage += send(pub, TOPIC);
            garbage += send(pub, TOPIC, seq(sequence));
            garbage += send(pub, TOPIC, seq(sequence), VALID, VALID);
            garbage += send(pub, TOPIC, seq(sequence), VALID, VALID, VALID, VALID, VALID, VALID, VALID);
            garbage += send(pub, TOPIC, new byte[7], VALID);
            garbage += send(pub, TOPIC, seq(-2), VALID);
            garbage += send(pub, TOPIC, seq(sequence++), INVALID_BYTE);
            garbage += send(pub, TOPIC, seq(sequence++), NOT_AN_ARRAY);
            garbage += send(pub, TOPIC, seq(sequence++), TRUNCATED);
            garbage += send(pub, TOPIC, seq(sequence++), LARGE);
            long last = sequence;
            send(pub, TOPIC, seq(last), VALID);

            EngineStream stream = ingest.stream(id);
            EngineCounters counters = stream.counters();
            int expected = garbage;
            Await.until("all " + expected + " garbage messages counted", WAIT,
                    () -> stream.cursor() == last && counters.get(Counter.DECODE_ERRORS) >= expected);
            long byReason = Arrays.stream(Reason.values()).mapToLong(counters::decodeErrors).sum();
            assertThat(counters.get(Counter.DECODE_ERRORS)).as("decode errors").isEqualTo(expected);
            assertThat(byReason).as("decode errors by reason").isEqualTo(expected);
            assertThat(counters.decodeErrors(Reason.WRONG_FRAME_COUNT)).isEqualTo(withReplay ? 6 : 4);
            assertThat(counters.get(Counter.VOIDS)).as("nothing voided").isZero();
            assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    private static byte[] large() {
        byte[] bytes = new byte[5_000_000];
        bytes[0] = (byte) 0xdd;
        Arrays.fill(bytes, 1, 5, (byte) 0x7f);
        return bytes;
    }

    private static byte[] seq(long sequence) {
        return io.kvbroker.codec.WireFrames.sequenceFrame(sequence);
    }

    /**
     * Answers pending replay requests with every batch from the start asked for (all valid) and the end marker;
     * returns the asking DEALER's identity, or null if none asked.
     */
    private static byte[] answer(ZMQ.Socket router, long published) {
        byte[] identity = null;
        byte[] asker;
        while ((asker = router.recv(ZMQ.DONTWAIT)) != null) {
            identity = asker;
            router.recv(0);
            long from = java.nio.ByteBuffer.wrap(router.recv(0)).getLong();
            for (long s = from; s < published; s++) {
                send(router, identity, EMPTY, TOPIC, seq(s), VALID);
            }
            send(router, identity, EMPTY, TOPIC, seq(-1), EMPTY);
        }
        return identity;
    }

    /** Sends one message; returns 1 (one message sent), so the test adds up what it sent. */
    private static int send(ZMQ.Socket socket, byte[]... frames) {
        for (int i = 0; i < frames.length; i++) {
            assertThat(socket.send(frames[i], i < frames.length - 1 ? ZMQ.SNDMORE : 0)).isTrue();
        }
        return 1;
    }
}
