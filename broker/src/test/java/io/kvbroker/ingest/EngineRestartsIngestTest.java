package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.core.Xxh64;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.IngestSink.ResetReason;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Engine restarts over real ZeroMQ sockets on loopback, each with and without a replay endpoint (vLLM's default):
 * a process that restarts while the broker is connected (its PUB closed, a new process bound on the same port), one
 * that restarts and publishes while the broker cannot hear it, and one that restarts while the broker itself is
 * down. The history the broker ends with is compared with what the new process published, batch by batch.
 */
class EngineRestartsIngestTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(1_000, 5, 60_000, 100_000, 10_000);
    private static final Duration WAIT = Duration.ofSeconds(30);

    private final RecordingSink sink = new RecordingSink();
    private final EngineRegistry registry = new EngineRegistry();

    private ZmqIngest ingest() {
        return new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50, System::currentTimeMillis);
    }

    private static long next(Simulator simulator) {
        return simulator.call(engines -> engines.get(0).nextSequence());
    }

    private static int subscriptions(Simulator simulator) {
        return simulator.call(engines -> engines.get(0).subscriptions());
    }

    /** Publishes {@code count} batches now, from the test's thread of control. */
    private static void publish(Simulator simulator, int count) {
        simulator.call(engines -> {
            for (int i = 0; i < count; i++) {
                engines.get(0).step();
            }
            return null;
        });
    }

    /** Waits for the engine's PUB to have the broker's subscription (a PUB drops what no subscriber asked for). */
    private static void awaitSubscribed(Simulator simulator, int atLeast) throws InterruptedException {
        Await.until("the broker subscribed to the engine", WAIT, () -> subscriptions(simulator) >= atLeast);
    }

    private static void awaitCaughtUp(ZmqIngest ingest, int id, Simulator simulator) throws InterruptedException {
        long last = next(simulator) - 1;
        Await.until("applied through " + last, WAIT, () -> ingest.stream(id) != null
                && ingest.stream(id).cursor() == last && ingest.stream(id).state() == EngineState.LIVE);
    }

    /** The current process's batches from {@code from} on, as it stamped them. */
    private static List<Double> published(Simulator simulator, long from) {
        List<Double> all = simulator.call(engines -> new ArrayList<>(engines.get(0).publishedTimestamps()));
        return all.subList((int) from, all.size());
    }

    private static long restarts(EngineStream stream) {
        return stream.counters().get(Counter.RESTARTS_BY_SEQUENCE)
                + stream.counters().get(Counter.RESTARTS_BY_FINGERPRINT);
    }

    /** A simulator of one engine that publishes only when the test says so. */
    private static Simulator oneEngine(long seed) {
        Simulator simulator = new Simulator(Simulator.fleet(1, seed), 0, 50);
        simulator.setStepping(false);
        return simulator.start();
    }

    /** The engine registered and live, with {@code batches} heard live from 0 (nothing before the broker). */
    private int liveFromZero(ZmqIngest ingest, Simulator simulator, boolean replay, int batches)
            throws InterruptedException {
        int id = registry.register(simulator.specs(replay).get(0));
        ingest.start();
        awaitSubscribed(simulator, 1);
        Await.until("connected", WAIT, () -> ingest.stream(id) != null
                && ingest.stream(id).state() == EngineState.CONNECTED);
        publish(simulator, batches);
        awaitCaughtUp(ingest, id, simulator);
        return id;
    }

    /** The engine's process restarts while the broker is connected: the PUB closes, a new one binds the port. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aProcessRestartedWhileConnectedReplacesTheOldBlocks(boolean replay) throws Exception {
        ZmqIngest ingest = ingest();
        try (Simulator simulator = oneEngine(61)) {
            int id = liveFromZero(ingest, simulator, replay, 13);
            simulator.call(engines -> {
                engines.get(0).goAway();
                engines.get(0).restart();
                engines.get(0).comeBack();
                return null;
            });
            awaitSubscribed(simulator, 1);
            publish(simulator, 3);
            Await.until("the new process found", WAIT, () -> ingest.stream(id).incarnation() == 2);
            awaitCaughtUp(ingest, id, simulator);

            EngineStream stream = ingest.stream(id);
            assertThat(sink.timestampsSinceLastReset(id)).as("the new process's batches, none of the dead one's")
                    .isEqualTo(published(simulator, 0));
            assertThat(restarts(stream)).isOne();
            assertThat(stream.counters().get(Counter.VOIDS)).isZero();
            assertThat(stream.historyPartial()).isFalse();
            assertThat(stream.counters().get(Counter.CONNECTIONS)).isGreaterThanOrEqualTo(2);
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * The process restarts and publishes while the broker cannot hear it. With a replay endpoint those batches are
     * replayed; without one they are lost for good: counted as a gap of unknown history, and the engine is marked
     * partial, never left holding the dead process's blocks.
     */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aProcessRestartedWhileDisconnectedIsANewIncarnation(boolean replay) throws Exception {
        ZmqIngest ingest = ingest();
        try (Simulator simulator = oneEngine(62)) {
            int id = liveFromZero(ingest, simulator, replay, 13);
            simulator.call(engines -> {
                engines.get(0).goAway();
                engines.get(0).restart();
                for (int i = 0; i < 4; i++) {
                    engines.get(0).step();
                }
                engines.get(0).comeBack();
                return null;
            });
            awaitSubscribed(simulator, 1);
            publish(simulator, 3);
            Await.until("the new process found", WAIT, () -> ingest.stream(id).incarnation() == 2);
            awaitCaughtUp(ingest, id, simulator);

            EngineStream stream = ingest.stream(id);
            assertThat(restarts(stream)).isOne();
            if (replay) {
                assertThat(sink.timestampsSinceLastReset(id)).isEqualTo(published(simulator, 0));
                assertThat(stream.historyPartial()).isFalse();
            } else {
                assertThat(sink.timestampsSinceLastReset(id)).as("what the broker could hear")
                        .isEqualTo(published(simulator, 4));
                assertThat(sink.all(id)).contains("unknown 0..3");
                assertThat(stream.counters().get(Counter.GAPS)).isOne();
                assertThat(stream.historyPartial()).isTrue();
            }
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /** The process restarts while the broker is down; the broker comes back from its persisted position. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aProcessRestartedWhileTheBrokerWasDownIsANewIncarnation(boolean replay) throws Exception {
        ZmqIngest first = ingest();
        ZmqIngest second = ingest();
        try (Simulator simulator = oneEngine(63)) {
            int id = liveFromZero(first, simulator, replay, 13);
            EngineStream before = first.stream(id);
            long cursor = before.cursor();
            byte[] last = simulator.call(engines -> engines.get(0).bufferedPayloads().get((int) cursor));
            first.stop(Duration.ofSeconds(5));
            simulator.call(engines -> {
                engines.get(0).restart();
                return null;
            });
            int subscribedBefore = subscriptions(simulator);
            sink.events.clear();
            second.resume(id, new EngineStream.Resume(before.incarnation(), cursor, Xxh64.hash(last), new byte[0]));
            second.start();
            awaitSubscribed(simulator, subscribedBefore + 1);
            publish(simulator, 3);
            Await.until("the new process found", WAIT, () -> second.stream(id) != null
                    && second.stream(id).incarnation() == 2);
            awaitCaughtUp(second, id, simulator);

            assertThat(sink.all(id).get(0)).as("the restored state is cleared first").isInstanceOf(ResetReason.class);
            assertThat(sink.timestampsSinceLastReset(id)).isEqualTo(published(simulator, 0));
            assertThat(restarts(second.stream(id))).isOne();
            assertThat(second.stream(id).historyPartial()).isFalse();
        } finally {
            first.stop(Duration.ofSeconds(5));
            second.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * An engine configured with the wrong topic (another pod's): nothing it sends is applied; the mismatches are
     * counted and the topic seen is shown, so the misconfiguration is found at once.
     */
    @Test
    void messagesWithAnotherTopicThanTheConfiguredOneAreNotApplied() throws Exception {
        ZmqIngest ingest = ingest();
        try (Simulator simulator = oneEngine(64)) {
            EngineSpec real = simulator.specs(false).get(0);
            EngineSpec wrong = new EngineSpec(real.key(), real.model(), real.endpoint(), real.replayEndpoint(),
                    "kv@pod-b@demo-model");
            int id = registry.register(wrong);
            ingest.start();
            awaitSubscribed(simulator, 1);
            publish(simulator, 20);
            Await.until("every message refused", WAIT, () -> ingest.stream(id) != null
                    && ingest.stream(id).counters().get(Counter.TOPIC_MISMATCHES) == 20);

            EngineStream stream = ingest.stream(id);
            assertThat(sink.all(id)).as("nothing applied").isEmpty();
            assertThat(stream.cursor()).isEqualTo(-1);
            assertThat(stream.mismatchedTopic()).isEqualTo(real.topic());
            assertThat(stream.state()).as("connected, nothing of its own heard").isEqualTo(EngineState.CONNECTED);
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /** With the configured topic the same engine is taken, and an empty configured topic takes any. */
    @ParameterizedTest(name = "configured topic is the engine's: {0}")
    @ValueSource(booleans = {true, false})
    void theConfiguredTopicOrNoneIsTaken(boolean configured) throws Exception {
        ZmqIngest ingest = ingest();
        try (Simulator simulator = oneEngine(65)) {
            EngineSpec real = simulator.specs(false).get(0);
            int id = registry.register(new EngineSpec(real.key(), real.model(), real.endpoint(),
                    real.replayEndpoint(), configured ? real.topic() : ""));
            ingest.start();
            awaitSubscribed(simulator, 1);
            publish(simulator, 5);
            awaitCaughtUp(ingest, id, simulator);
            assertThat(sink.sequencesSinceLastReset(id)).containsExactlyElementsOf(
                    LongStream.range(0, 5).boxed().toList());
            assertThat(ingest.stream(id).counters().get(Counter.TOPIC_MISMATCHES)).isZero();
            assertThat(ingest.stream(id).mismatchedTopic()).isNull();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /** Simulated engines keep what their current process published, for the comparisons above. */
    @Test
    void theSimulatorKeepsWhatItsCurrentProcessPublished() {
        try (Simulator simulator = oneEngine(66)) {
            publish(simulator, 3);
            List<byte[]> buffered = simulator.call(engines -> engines.get(0).bufferedPayloads());
            long firstBuffered = simulator.call(engines -> engines.get(0).firstBuffered());
            assertThat(buffered).hasSize(3);
            assertThat(firstBuffered).isZero();
            List<byte[]> afterRestart = simulator.call(engines -> {
                SimulatedEngine engine = engines.get(0);
                engine.restart();
                return engine.bufferedPayloads();
            });
            assertThat(afterRestart).isEmpty();
        }
    }
}
