package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.MalformedMessageException.Reason;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import io.kvbroker.testing.SimulatedBrokers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * A seeded campaign over the frame handling of a running broker: a publisher on a real ZeroMQ socket sends every kind
 * of wrong message (frame counts, sequence frames of any size, sequences that jump anywhere, mutated and random
 * payloads) and its replay ROUTER answers at random, beside a well-behaved simulated engine. Bounded by message count,
 * not time. Afterwards the ingest thread is still running, the good engine's history is exact, and the hostile
 * engine, once it publishes properly, holds exactly what it published: nothing carried over.
 */
@Tag("slow")
class HostilePublisherFuzzTest {
    private static final long SEED = 0x6b76627263L;
    private static final int MESSAGES = 6_000;
    private static final byte[] EMPTY = new byte[0];
    private static final byte[] TOPIC = "kv@hostile@m".getBytes(StandardCharsets.UTF_8);

    private final KvEventEncoder encoder = new KvEventEncoder();
    /** Replies the hostile ROUTER sent that are not a proper end marker: random frames or mutated batches. */
    private int garbageReplies;
    /** Of those, replies of random frames (any frame count). */
    private int randomFrameReplies;

    @Test
    void aHostilePublisherNeitherStopsIngestNorReachesAnotherEngine(@TempDir Path dir) throws Exception {
        int pubPort = Ports.freeRange(1);
        int routerPort = Ports.freeRange(1);
        SplittableRandom random = new SplittableRandom(SEED);
        try (Simulator simulator = new Simulator(Simulator.fleet(1, 43), 0, 100).start();
                ZContext zmq = new ZContext()) {
            ZMQ.Socket pub = zmq.createSocket(SocketType.PUB);
            pub.setSndHWM(100_000);
            pub.bind("tcp://127.0.0.1:" + pubPort);
            ZMQ.Socket router = zmq.createSocket(SocketType.ROUTER);
            router.bind("tcp://127.0.0.1:" + routerPort);
            BrokerDaemon daemon = SimulatedBrokers.start(simulator, dir, "broker",
                    Map.of("ingest.replayTimeoutMs", "100"), SimulatedBrokers.engine("hostile", "m", "kv@hostile@m",
                            "tcp://127.0.0.1:" + pubPort, "tcp://127.0.0.1:" + routerPort));
            try {
                Await.until("both engines' streams exist", Duration.ofSeconds(30),
                        () -> daemon.ingest().stream(0) != null && daemon.ingest().stream(1) != null);
                EngineStream goodStream = daemon.ingest().stream(0);
                EngineStream hostile = daemon.ingest().stream(1);
                // The SUB connects asynchronously: publish until the broker hears the hostile engine at all.
                long probe = 0;
                while (hostile.lastHeardSequence() < 0) {
                    send(pub, TOPIC, WireFrames.sequenceFrame(probe++), valid(random, probe));
                    answer(router, random);
                    // Pacing the probes: publish until heard, at a rate that does not flood the late-joining SUB.
                    Thread.sleep(20);
                }

                long sequence = probe;
                int[] kinds = new int[7];
                // Live messages the contract refuses by their frames alone, whatever their payload: a frame count
                // other than 3, or a sequence frame that is not 8 bytes.
                int frameFaults = 0;
                int wrongFrameCounts = 0;
                for (int i = 0; i < MESSAGES; i++) {
                    int kind = random.nextInt(kinds.length);
                    kinds[kind]++;
                    switch (kind) {
                        case 0 -> send(pub, TOPIC, WireFrames.sequenceFrame(++sequence),
                                mutate(valid(random, sequence), random));
                        case 1 -> {
                            byte[][] frames = randomFrames(random, TOPIC);
                            frameFaults += frames.length != 3 || frames[1].length != 8 ? 1 : 0;
                            wrongFrameCounts += frames.length != 3 ? 1 : 0;
                            send(pub, frames);
                        }
                        case 2 -> {
                            byte[] sequenceFrame = randomBytes(random, random.nextInt(17));
                            frameFaults += sequenceFrame.length != 8 ? 1 : 0;
                            send(pub, TOPIC, sequenceFrame, valid(random, sequence));
                        }
                        case 3 -> {
                            sequence = wildSequence(random, sequence);
                            send(pub, TOPIC, WireFrames.sequenceFrame(sequence), valid(random, sequence));
                        }
                        case 4 -> send(pub, TOPIC, WireFrames.sequenceFrame(++sequence),
                                randomBytes(random, random.nextInt(random.nextBoolean() ? 64 : 65_536)));
                        case 5 -> send(pub, TOPIC, WireFrames.sequenceFrame(++sequence), valid(random, sequence));
                        default -> answer(router, random);
                    }
                    if (i % 50 == 0) {
                        answer(router, random);
                        // Pacing the campaign, part of the scenario: a burst of 50, then replay requests answered.
                        Thread.sleep(5);
                    }
                }
                EngineCounters counters = hostile.counters();
                assertThat(daemon.ingest().isRunning()).as("the ingest thread survived the campaign").isTrue();
                System.out.println("hostile engine's counters: " + java.util.Arrays.stream(Counter.values())
                        .map(c -> c + "=" + counters.get(c)).toList() + ", decode errors by reason: "
                        + java.util.Arrays.stream(Reason.values()).filter(r -> counters.decodeErrors(r) > 0)
                        .map(r -> r.label() + "=" + counters.decodeErrors(r)).toList());
                // Every refused message is counted once, under one reason: no more of them than messages sent (any
                // live message may be refused, a valid payload too once a wild jump made its sequence implausible).
                // Read while ingest runs on: the total is counted just before its reason, so the sum by reason read
                // between two reads of the total lies within them (one behind at most).
                long decodeErrors = counters.get(Counter.DECODE_ERRORS);
                long byReason = java.util.Arrays.stream(Reason.values()).mapToLong(counters::decodeErrors).sum();
                assertThat(byReason).as("decode errors summed by reason")
                        .isBetween(decodeErrors - 1, counters.get(Counter.DECODE_ERRORS));
                int liveMessages = MESSAGES - kinds[6];
                assertThat(decodeErrors).as("decode errors, at most the %d live messages and %d garbage replies",
                        liveMessages, garbageReplies).isBetween(1L, (long) liveMessages + garbageReplies);
                // Frame faults sent live are refused whatever else is wrong: each one that arrives is counted under
                // a frame reason. A wrong frame count comes only from those and from replies of random frames. PUB/SUB
                // may still drop a few on a loaded machine (5 of 699 once in CI), so arrival is bounded from below
                // at 95%, not assumed whole.
                assertThat(counters.get(Counter.DISCONNECTIONS)).as("the hostile engine's connection held").isZero();
                assertThat(counters.decodeErrors(Reason.WRONG_FRAME_COUNT)
                        + counters.decodeErrors(Reason.BAD_SEQUENCE_FRAME))
                        .as("frame faults counted; %d sent live", frameFaults)
                        .isGreaterThanOrEqualTo(frameFaults * 95L / 100);
                assertThat(counters.decodeErrors(Reason.WRONG_FRAME_COUNT))
                        .as("wrong frame counts; %d sent live, %d replies of random frames", wrongFrameCounts,
                                randomFrameReplies)
                        .isBetween(wrongFrameCounts * 95L / 100, (long) wrongFrameCounts + randomFrameReplies);

                // The hostile engine restarts and publishes properly (each batch clears and stores the same three
                // blocks): it goes live and holds exactly those.
                long[] hashes = {0x1111L, 0x2222L, 0x3333L};
                byte[] cleanPayload = encoder.encode(new KvEventBatch(1_800_000_000.0, 0,
                        List.of(AllBlocksCleared.ALL, stored(hashes)), 0, 0), KvEventEncoder.Form.MAP);
                long clean = 0;
                while (!(hostile.state() == EngineState.LIVE && hostile.cursor() >= 20
                        && daemon.index().holdings(1, false).sequence() == hostile.cursor())) {
                    assertThat(clean).as("the hostile engine goes live again").isLessThan(3_000);
                    send(pub, TOPIC, WireFrames.sequenceFrame(clean++), cleanPayload);
                    answerEndOfReplay(router);
                    // Pacing: publish clean batches until the engine is live again.
                    Thread.sleep(10);
                }
                BlockIndexView.assertHolds(daemon, 1, hashes);

                // The good engine: stopped to settle, then its applied history is every sequence it published once.
                // A gap is allowed (the ingest thread shares the machine with the campaign, and the receive queue
                // may overflow); it is replayed, so nothing is voided or lost.
                simulator.setStepping(false);
                long published = simulator.call(engines -> engines.get(0).nextSequence()) - 1;
                Await.until("the good engine applied all it published", Duration.ofSeconds(30),
                        () -> goodStream.cursor() == published);
                EngineCounters goodCounters = goodStream.counters();
                for (Counter counter : List.of(Counter.DECODE_ERRORS, Counter.VOIDS,
                        Counter.RESTARTS_BY_SEQUENCE, Counter.RESTARTS_BY_FINGERPRINT,
                        Counter.UNKNOWN_HISTORY_BATCHES)) {
                    assertThat(goodCounters.get(counter)).as("good engine's %s", counter).isZero();
                }
                assertThat(goodCounters.get(Counter.BATCHES)).isEqualTo(published + 1);
                assertThat(daemon.index().holdings(0, false).sequence()).isEqualTo(published);
                System.out.printf("hostile publisher: %d messages (kinds %s), %d decode errors, %d voids, %d restarts"
                        + " by sequence, %d gaps; good engine %d batches exact%n", MESSAGES,
                        java.util.Arrays.toString(kinds), counters.get(Counter.DECODE_ERRORS),
                        counters.get(Counter.VOIDS), counters.get(Counter.RESTARTS_BY_SEQUENCE),
                        counters.get(Counter.GAPS), published + 1);
                System.out.printf("good engine: %d gaps, %d batches replayed%n", goodCounters.get(Counter.GAPS),
                        goodCounters.get(Counter.REPLAYED_BATCHES));
            } finally {
                daemon.stop();
            }
        }
    }

    /** Reads the index the way a query does. */
    private static final class BlockIndexView {
        static void assertHolds(BrokerDaemon daemon, int engineId, long[] hashes) {
            var holdings = daemon.index().holdings(engineId, true);
            assertThat(holdings.keys()).as("engine %d holds exactly its last batches' blocks", engineId)
                    .hasSize(hashes.length);
            var holders = daemon.index().lookupHashes(hashes);
            for (int i = 0; i < hashes.length; i++) {
                assertThat(holders.get(i)).as("holders of %x", hashes[i]).singleElement()
                        .satisfies(holder -> assertThat(holder.engineId()).isEqualTo(engineId));
            }
        }
    }

    private byte[] valid(SplittableRandom random, long sequence) {
        long base = random.nextLong();
        List<KvEvent> events = new ArrayList<>();
        int count = 1 + random.nextInt(4);
        for (int i = 0; i < count; i++) {
            events.add(random.nextInt(4) == 0 ? new BlockRemoved(new long[] {base + i}, Medium.GPU, 0,
                    GroupKind.FULL_ATTENTION, null, null)
                    : stored(new long[] {base + i, base + i + 1}));
        }
        if (random.nextInt(50) == 0) {
            events.add(AllBlocksCleared.ALL);
        }
        return encoder.encode(new KvEventBatch(1_700_000_000.0 + sequence * 0.001, 0, events, 0, 0),
                random.nextBoolean() ? KvEventEncoder.Form.MAP : KvEventEncoder.Form.ARRAY);
    }

    private static BlockStored stored(long[] hashes) {
        int[] tokens = new int[hashes.length * 16];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = (int) (hashes[0] & 0xffff) + i;
        }
        return new BlockStored(hashes, false, 0, tokens, 16, KvEvent.ABSENT, Medium.GPU, null, null, 0,
                GroupKind.FULL_ATTENTION, KvEvent.ABSENT, null, null, null);
    }

    /** One to four changes: a byte replaced, inserted or removed, or the tail cut off. */
    private static byte[] mutate(byte[] input, SplittableRandom random) {
        byte[] out = input;
        for (int m = 1 + random.nextInt(4); m > 0 && out.length > 1; m--) {
            int at = random.nextInt(out.length);
            switch (random.nextInt(4)) {
                case 0 -> out[at] = (byte) random.nextInt(256);
                case 1 -> {
                    byte[] longer = new byte[out.length + 1];
                    System.arraycopy(out, 0, longer, 0, at);
                    longer[at] = (byte) random.nextInt(256);
                    System.arraycopy(out, at, longer, at + 1, out.length - at);
                    out = longer;
                }
                case 2 -> {
                    byte[] shorter = new byte[out.length - 1];
                    System.arraycopy(out, 0, shorter, 0, at);
                    System.arraycopy(out, at + 1, shorter, at, out.length - at - 1);
                    out = shorter;
                }
                default -> out = java.util.Arrays.copyOf(out, at);
            }
        }
        return out;
    }

    /** Sequences a broken or malicious engine might send: far ahead, behind, negative, at the ends of the range. */
    private static long wildSequence(SplittableRandom random, long sequence) {
        return switch (random.nextInt(6)) {
            case 0 -> sequence + 1 + random.nextInt(5_000);
            case 1 -> Math.max(0, sequence - 1 - random.nextInt(100));
            case 2 -> Long.MAX_VALUE - random.nextInt(3);
            case 3 -> -2 - random.nextInt(1_000);
            case 4 -> random.nextLong();
            default -> 0;
        };
    }

    private static byte[][] randomFrames(SplittableRandom random, byte[] topic) {
        byte[][] frames = new byte[1 + random.nextInt(7)][];
        frames[0] = topic;
        for (int i = 1; i < frames.length; i++) {
            frames[i] = randomBytes(random, random.nextInt(3) == 0 ? 8 : random.nextInt(40));
        }
        return frames;
    }

    private static byte[] randomBytes(SplittableRandom random, int length) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) random.nextInt(256);
        }
        return bytes;
    }

    /** Drains replay requests and answers each at random: silence, garbage, an end marker, or a stray batch. */
    private void answer(ZMQ.Socket router, SplittableRandom random) {
        byte[] identity;
        while ((identity = router.recv(ZMQ.DONTWAIT)) != null) {
            while (router.hasReceiveMore()) {
                router.recv(0);
            }
            for (int replies = random.nextInt(4); replies > 0; replies--) {
                switch (random.nextInt(4)) {
                    case 0 -> {
                        garbageReplies++;
                        randomFrameReplies++;
                        send(router, identity, randomFrames(random, EMPTY));
                    }
                    case 1 -> send(router, identity, EMPTY, TOPIC, WireFrames.sequenceFrame(WireFrames.END_OF_REPLAY),
                            EMPTY);
                    case 2 -> {
                        garbageReplies++;
                        long sequence = wildSequence(random, random.nextInt(1_000));
                        send(router, identity, EMPTY, TOPIC, WireFrames.sequenceFrame(sequence),
                                mutate(valid(random, sequence), random));
                    }
                    default -> {
                        // Silence for this one.
                    }
                }
            }
        }
    }

    /** Drains replay requests and answers as an engine whose replay buffer holds nothing asked for. */
    private static void answerEndOfReplay(ZMQ.Socket router) {
        byte[] identity;
        while ((identity = router.recv(ZMQ.DONTWAIT)) != null) {
            while (router.hasReceiveMore()) {
                router.recv(0);
            }
            send(router, identity, EMPTY, TOPIC, WireFrames.sequenceFrame(WireFrames.END_OF_REPLAY), EMPTY);
        }
    }

    private static void send(ZMQ.Socket socket, byte[]... frames) {
        for (int i = 0; i < frames.length; i++) {
            socket.send(frames[i], (i < frames.length - 1 ? ZMQ.SNDMORE : 0) | ZMQ.DONTWAIT);
        }
    }

    private static void send(ZMQ.Socket router, byte[] identity, byte[][] frames) {
        byte[][] all = new byte[frames.length + 1][];
        all[0] = identity;
        System.arraycopy(frames, 0, all, 1, frames.length);
        send(router, all);
    }
}
