package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import java.time.Duration;
import java.util.ArrayList;
import org.junit.jupiter.api.Test;

/**
 * A replay answer cut short (the engine's ROUTER drops its tail and end marker at its high-water mark) while nothing
 * live waits behind it, over real ZeroMQ: the engine then publishes nothing more (an idle vLLM), so no live batch will
 * ever show what is missing. The reply stream goes quiet for {@code replayTimeoutMs} and must be continued from the
 * new cursor; the engine's history must end exact: every sequence it published once, in order, no reset.
 */
class CutReplayIngestTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(1_000, 5, 60_000, 100_000, 10_000);
    private static final int PUBLISHED = 300;
    private static final int CUT_AFTER = 25;
    private static final Duration WAIT = Duration.ofSeconds(30);

    /** Engine 0's first-contact replay is cut after 25 of 300 batches; engine 1 beside it is answered whole. */
    @Test
    void aFirstContactReplayCutShortIsContinuedThoughTheEngineIsIdle() throws Exception {
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (Simulator simulator = new Simulator(Simulator.fleet(2, 71), 0, 50)) {
            simulator.setStepping(false);
            simulator.start();
            // Both engines published before kvbroker was there, and publish nothing from now on.
            simulator.call(engines -> {
                for (SimulatedEngine engine : engines) {
                    for (int i = 0; i < PUBLISHED; i++) {
                        engine.step();
                    }
                }
                engines.get(0).cutNextReplayAfter(CUT_AFTER);
                return null;
            });
            int cut = registry.register(simulator.specs().get(0));
            int whole = registry.register(simulator.specs().get(1));
            ingest.start();
            awaitCaughtUp(ingest, cut, PUBLISHED - 1);
            awaitCaughtUp(ingest, whole, PUBLISHED - 1);

            EngineCounters counters = ingest.stream(cut).counters();
            assertExact(simulator, sink, ingest, 0, cut);
            assertExact(simulator, sink, ingest, 1, whole);
            assertThat(counters.get(Counter.REPLAY_TIMEOUTS)).as("the cut stream went quiet").isPositive();
            assertThat(counters.get(Counter.REPLAYS_REQUESTED)).as("and was continued").isGreaterThanOrEqualTo(2);
            assertThat(counters.get(Counter.REPLAYED_BATCHES)).as("every batch came by replay").isEqualTo(PUBLISHED);
            System.out.printf("first contact cut after %d of %d: %d replays requested, %d timeouts, %d replayed;"
                    + " cursor %d%n", CUT_AFTER, PUBLISHED, counters.get(Counter.REPLAYS_REQUESTED),
                    counters.get(Counter.REPLAY_TIMEOUTS), counters.get(Counter.REPLAYED_BATCHES),
                    ingest.stream(cut).cursor());
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * A live engine goes away, publishes 300 batches meanwhile (buffered only), and comes back idle: the reconnect's
     * continuation replay is cut after 25 replies (the checked batch at the cursor and 24 new ones).
     */
    @Test
    void aReconnectReplayCutShortIsContinuedThoughTheEngineIsIdle() throws Exception {
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (Simulator simulator = new Simulator(Simulator.fleet(1, 72), 0, 50).start()) {
            int id = registry.register(simulator.specs().get(0));
            ingest.start();
            Await.until("live", WAIT, () -> ingest.stream(id) != null
                    && ingest.stream(id).state() == EngineState.LIVE && ingest.stream(id).cursor() > 5);
            simulator.setStepping(false);
            long last = simulator.call(engines -> {
                SimulatedEngine engine = engines.get(0);
                engine.goAway();
                for (int i = 0; i < PUBLISHED; i++) {
                    engine.step();
                }
                engine.cutNextReplayAfter(CUT_AFTER);
                return engine.nextSequence() - 1;
            });
            EngineSpec spec = simulator.specs().get(0);
            Await.until("the engine's ports released", WAIT, () -> Ports.free(spec.endpoint().port())
                    && Ports.free(spec.replayEndpoint().orElseThrow().port()));
            simulator.call(engines -> {
                engines.get(0).comeBack();
                return null;
            });
            awaitCaughtUp(ingest, id, last);

            EngineCounters counters = ingest.stream(id).counters();
            assertExact(simulator, sink, ingest, 0, id);
            assertThat(ingest.stream(id).incarnation()).isOne();
            assertThat(counters.get(Counter.REPLAY_TIMEOUTS)).as("the cut stream went quiet").isPositive();
            System.out.printf("reconnect replay cut after %d of %d: %d replays requested, %d timeouts, %d replayed;"
                    + " cursor %d%n", CUT_AFTER, PUBLISHED, counters.get(Counter.REPLAYS_REQUESTED),
                    counters.get(Counter.REPLAY_TIMEOUTS), counters.get(Counter.REPLAYED_BATCHES), last);
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    private static void awaitCaughtUp(ZmqIngest ingest, int id, long last) throws InterruptedException {
        try {
            Await.until("cursor at the last published sequence " + last, WAIT,
                    () -> ingest.stream(id) != null && ingest.stream(id).cursor() == last);
        } catch (AssertionError e) {
            EngineStream stream = ingest.stream(id);
            throw new AssertionError(e.getMessage() + ": " + (stream == null ? "no stream" : stream.state()
                    + " cursor " + stream.cursor() + ", replays " + stream.counters().get(Counter.REPLAYS_REQUESTED)
                    + ", timeouts " + stream.counters().get(Counter.REPLAY_TIMEOUTS)), e);
        }
    }

    /** Every batch the engine published applied once, in order, each the one published: no reset, no loss. */
    private static void assertExact(Simulator simulator, RecordingSink sink, ZmqIngest ingest, int engine, int id) {
        sink.assertExactly(id, simulator.call(engines -> new ArrayList<>(engines.get(engine).publishedTimestamps())),
                "engine " + engine);
        EngineCounters counters = ingest.stream(id).counters();
        assertThat(counters.get(Counter.VOIDS)).isZero();
        assertThat(counters.get(Counter.DECODE_ERRORS)).isZero();
    }
}
