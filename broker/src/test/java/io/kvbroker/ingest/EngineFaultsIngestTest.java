package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.Endpoint;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Engine faults on the network path. An engine bursting into full network buffers: the broker's receive high-water
 * mark is tiny and it stops reading for the burst, so most of the burst is dropped on the way (by the engine's PUB
 * or the broker's SUB); the gaps are replayed from the engine's buffer and the engine's history ends exact, while a
 * quiet engine beside it is unaffected. And an engine that falls silent for a while and resumes, one whose last
 * batches are lost before it falls quiet, and an endpoint that never speaks ZeroMQ.
 */
class EngineFaultsIngestTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(1_000, 5, 60_000, 100_000, 10_000);

    /** Records like {@link RecordingSink}; while held, the ingest thread stops in it: nothing is read meanwhile. */
    private static final class HeldSink implements IngestSink {
        final RecordingSink recording = new RecordingSink();
        volatile boolean held;

        @Override
        public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
            recording.onBatch(engineId, incarnation, sequence, batch);
            while (held) {
                // The ingest thread parks here while the test holds it: the stall is the fault under test.
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }

        @Override
        public void onReset(int engineId, long incarnation, ResetReason reason) {
            recording.onReset(engineId, incarnation, reason);
        }

        @Override
        public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
            recording.onUnknownHistory(engineId, incarnation, fromSequence, toSequence);
        }
    }

    @Test
    void aBurstIntoFullBuffersIsReplayedAndTheHistoryEndsExact() throws Exception {
        // (The broker's receive high-water mark is 5 below; ingest.receiveHighWaterMark in production.)
        List<SimulatedEngine.Options> fleet = new ArrayList<>(Simulator.fleet(2, 21));
        SimulatedEngine.Options o = fleet.get(0);
        // The bursting engine keeps 60,000 batches for replay, more than the burst, and answers a replay whole.
        fleet.set(0, new SimulatedEngine.Options(o.pod(), o.rank(), o.model(), o.topic(), o.form(), 60_000,
                100_000, o.shape(), o.seed()));
        HeldSink sink = new HeldSink();
        EngineRegistry registry = new EngineRegistry();
        // A receive high-water mark of 5 messages: the SUB drops beyond that while the ingest thread is busy.
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 5, 50,
                System::currentTimeMillis);
        try (Simulator simulator = new Simulator(fleet, 0, 20).start()) {
            // The bursting engine's send queue holds 100 messages: the burst cannot all wait there.
            simulator.call(engines -> {
                engines.get(0).limitSendQueue(100);
                return null;
            });
            int burst = registry.register(simulator.specs().get(0));
            int quiet = registry.register(simulator.specs().get(1));
            ingest.start();
            Await.until("both engines live", Duration.ofSeconds(30), () -> ingest.stream(burst) != null
                    && ingest.stream(quiet) != null && ingest.stream(burst).cursor() > 5
                    && ingest.stream(quiet).cursor() > 5);
            // The broker stops reading while one engine sends 20,000 batches: more than the engine's send queue, the
            // loopback TCP buffers and the broker's SUB hold together, so the rest is dropped on the way.
            simulator.setStepping(false);
            sink.held = true;
            simulator.call(engines -> {
                for (int i = 0; i < 20_000; i++) {
                    engines.get(0).step();
                }
                return null;
            });
            sink.held = false;
            // A lost run is found when a later live batch arrives: the engines go on for a while.
            simulator.setStepping(true);
            Await.until("the burst's gap seen", Duration.ofSeconds(60),
                    () -> ingest.stream(burst).counters().get(Counter.GAPS) > 0);
            simulator.setStepping(false);
            long[] next = simulator.call(engines -> engines.stream().mapToLong(SimulatedEngine::nextSequence)
                    .toArray());
            Await.until("both engines caught up", Duration.ofSeconds(90), () -> ingest.stream(burst).cursor()
                    == next[0] - 1 && ingest.stream(quiet).cursor() == next[1] - 1);
            EngineCounters counters = ingest.stream(burst).counters();
            assertThat(counters.get(Counter.GAPS)).as("the burst overflowed a buffer").isPositive();
            assertThat(counters.get(Counter.REPLAYED_BATCHES)).as("and was replayed").isPositive();
            assertThat(counters.get(Counter.VOIDS)).isZero();
            assertThat(sink.recording.sequencesSinceLastReset(burst))
                    .containsExactlyElementsOf(LongStream.range(0, next[0]).boxed().toList());
            assertThat(sink.recording.sequencesSinceLastReset(quiet))
                    .containsExactlyElementsOf(LongStream.range(0, next[1]).boxed().toList());
            assertThat(ingest.stream(quiet).counters().get(Counter.VOIDS)).isZero();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * An engine that pauses longer than {@code silentAfterMs} is shown SILENT, keeps its blocks, and goes LIVE again
     * when it resumes: no gap, no replay, no reset, every batch once; with a replay endpoint and without one.
     */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void anEngineThatFallsSilentAndResumesIsLiveAgainWithNothingLost(boolean replay) throws Exception {
        List<SimulatedEngine.Options> fleet = Simulator.fleet(1, 22);
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        EngineStream.Limits silentSoon = new EngineStream.Limits(1_000, 5, 300, 100_000, 10_000);
        ZmqIngest ingest = new ZmqIngest(registry, sink, silentSoon, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        Simulator simulator = new Simulator(fleet, 0, 50);
        // Published only once the broker's subscription is there: without a replay endpoint nothing earlier is had.
        simulator.setStepping(false);
        try (simulator) {
            simulator.start();
            int id = registry.register(simulator.specs(replay).get(0));
            ingest.start();
            Await.until("subscribed", Duration.ofSeconds(30),
                    () -> simulator.call(engines -> engines.get(0).subscriptions()) >= 1);
            simulator.setStepping(true);
            Await.until("live", Duration.ofSeconds(30), () -> ingest.stream(id) != null
                    && ingest.stream(id).state() == EngineState.LIVE && ingest.stream(id).cursor() > 5);
            simulator.setStepping(false);
            Await.until("silent after 300 ms without a batch", Duration.ofSeconds(30),
                    () -> ingest.stream(id).state() == EngineState.SILENT);
            long silentAt = ingest.stream(id).cursor();
            simulator.setStepping(true);
            Await.until("live again", Duration.ofSeconds(30), () -> ingest.stream(id).state() == EngineState.LIVE
                    && ingest.stream(id).cursor() > silentAt + 5);
            simulator.setStepping(false);
            long next = simulator.call(engines -> engines.get(0).nextSequence());
            Await.until("caught up", Duration.ofSeconds(30), () -> ingest.stream(id).cursor() == next - 1);
            EngineCounters counters = ingest.stream(id).counters();
            assertThat(counters.get(Counter.GAPS)).isZero();
            assertThat(counters.get(Counter.VOIDS)).isZero();
            assertThat(counters.get(Counter.RESTARTS_BY_SEQUENCE)).isZero();
            assertThat(ingest.stream(id).historyPartial()).isFalse();
            assertThat(sink.sequencesSinceLastReset(id))
                    .containsExactlyElementsOf(LongStream.range(0, next).boxed().toList());
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * An endpoint that accepts TCP and never speaks ZeroMQ (a wrong port, an engine still starting its server): the
     * broker drops each connection once the greeting has waited {@code EngineSockets.HANDSHAKE_TIMEOUT_MS} and tries
     * again, so when a real engine takes the port its batches flow.
     */
    @Test
    void anEndpointThatAcceptsButNeverGreetsIsDroppedAndTriedAgain() throws Exception {
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        // Two ports: the simulated engine that comes later binds its replay ROUTER on the next one.
        int port = Ports.freeRange(2);
        List<Socket> accepted = Collections.synchronizedList(new ArrayList<>());
        try (ServerSocket mute = new ServerSocket(port, 50,
                InetAddress.getByName("127.0.0.1"))) {
            Thread acceptor = new Thread(() -> {
                try {
                    while (true) {
                        accepted.add(mute.accept());
                    }
                } catch (IOException closed) {
                    // The test closed the server socket.
                }
            });
            acceptor.start();
            int id = registry.register(new EngineSpec(new EngineKey("mute", 0),
                    "m", Endpoint.parse("tcp://127.0.0.1:" + port), Optional.empty(),
                    ""));
            ingest.start();
            Await.until("a first connection accepted", Duration.ofSeconds(30), () -> !accepted.isEmpty());
            Socket first = accepted.get(0);
            // The broker sends its greeting, hears none, and closes the connection: the read ends. (Bounded well
            // above the broker's 5 s and below ZeroMQ's own 30 s, which left such a socket stuck that long.)
            first.setSoTimeout(20_000);
            InputStream in = first.getInputStream();
            while (in.read() >= 0) {
                // The broker's half of the greeting.
            }
            Await.until("a second connection after the first was dropped", Duration.ofSeconds(30),
                    () -> accepted.size() >= 2);
            assertThat(ingest.stream(id).state()).isEqualTo(EngineState.CONNECTING);
            for (Socket socket : accepted) {
                socket.close();
            }
            mute.close();
            acceptor.join();
            // A real engine takes the port: the next try connects, and its batches flow.
            try (Simulator simulator = new Simulator(Simulator.fleet(1, 23), port, 50).start()) {
                Await.until("live once a real engine took the port", Duration.ofSeconds(30),
                        () -> ingest.stream(id).state() == EngineState.LIVE && ingest.stream(id).cursor() >= 5);
            }
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * An engine whose last batches are lost on the way and which then falls quiet (the end of a burst): no later batch
     * shows the gap, so the probe sent when it turns SILENT finds them in its buffer. The engine stays SILENT.
     */
    @Test
    void batchesLostJustBeforeAnEngineFallsQuietAreFoundWhenItTurnsSilent() throws Exception {
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        EngineStream.Limits silentSoon = new EngineStream.Limits(1_000, 5, 300, 100_000, 10_000);
        ZmqIngest ingest = new ZmqIngest(registry, sink, silentSoon, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (Simulator simulator = new Simulator(Simulator.fleet(1, 24), 0, 50).start()) {
            int id = registry.register(simulator.specs().get(0));
            ingest.start();
            Await.until("live", Duration.ofSeconds(30), () -> ingest.stream(id) != null
                    && ingest.stream(id).state() == EngineState.LIVE && ingest.stream(id).cursor() > 5);
            simulator.setStepping(false);
            long next = simulator.call(engines -> {
                engines.get(0).dropLive(3);
                for (int i = 0; i < 3; i++) {
                    engines.get(0).step();
                }
                return engines.get(0).nextSequence();
            });
            Await.until("the lost tail found by the silence probe", Duration.ofSeconds(30),
                    () -> ingest.stream(id).cursor() == next - 1);
            Await.until("silent, the probe's replies not counted as the engine speaking", Duration.ofSeconds(30),
                    () -> ingest.stream(id).state() == EngineState.SILENT);
            EngineCounters counters = ingest.stream(id).counters();
            assertThat(counters.get(Counter.REPLAYED_BATCHES)).isGreaterThanOrEqualTo(3);
            assertThat(counters.get(Counter.VOIDS)).isZero();
            assertThat(sink.sequencesSinceLastReset(id))
                    .containsExactlyElementsOf(LongStream.range(0, next).boxed().toList());
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }
}
