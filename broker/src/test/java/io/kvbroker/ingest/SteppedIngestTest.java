package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import java.time.Duration;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.zeromq.ZContext;

/**
 * Ingest is steppable, as an Aeron agent is: opened without its thread and driven round by round with
 * {@code doWork} from the test's own thread, which also drives a simulated engine in between, over real ZeroMQ.
 */
class SteppedIngestTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(1_000, 5, 60_000, 100_000, 10_000);
    private static final int BEFORE = 40;
    private static final int LIVE = 60;
    private static final Duration WAIT = Duration.ofSeconds(30);

    @Test
    void doWorkTakesInAnEngineWithoutTheIngestThread() throws Exception {
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (ZContext context = new ZContext()) {
            SimulatedEngine engine = new SimulatedEngine(context, Simulator.fleet(1, 81).get(0), 0, 0);
            try {
                // Published before kvbroker was there: the first contact replays them.
                for (int i = 0; i < BEFORE; i++) {
                    engine.step();
                }
                SimulatedEngine.Options o = engine.options();
                int id = registry.register(new EngineSpec(new EngineKey(o.pod(), o.rank()), o.model(),
                        Endpoint.parse(engine.endpoint()), Optional.of(Endpoint.parse(engine.replayEndpoint())),
                        o.topic()));
                ingest.open();
                assertThat(ingest.doWork(System.currentTimeMillis())).as("the engine added on the first step")
                        .isPositive();
                step(ingest, engine, "the first-contact replay",
                        () -> sink.sequencesSinceLastReset(id).size() == BEFORE && engine.subscriptions() > 0);
                assertThat(ingest.isRunning()).as("no ingest thread was started").isFalse();

                for (int i = 0; i < LIVE; i++) {
                    engine.step();
                }
                step(ingest, engine, "the live batches",
                        () -> sink.sequencesSinceLastReset(id).size() == BEFORE + LIVE);
                assertThat(sink.sequencesSinceLastReset(id)).as("every batch once, in order")
                        .containsExactlyElementsOf(LongStream.range(0, BEFORE + LIVE).boxed().toList());
                assertThat(ingest.stream(id).state()).isEqualTo(EngineState.LIVE);
                assertThat(ingest.stream(id).counters().get(EngineCounters.Counter.REPLAYED_BATCHES))
                        .isEqualTo(BEFORE);
            } finally {
                ingest.stop(Duration.ofSeconds(5));
                engine.close();
            }
        }
    }

    /** Steps ingest and the engine in turn on this thread until {@code done}, idling as the ingest loop does. */
    private static void step(ZmqIngest ingest, SimulatedEngine engine, String what, BooleanSupplier done) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!done.getAsBoolean()) {
            assertThat(System.nanoTime() - deadline).as(what + " within " + WAIT).isNegative();
            int work = ingest.doWork(System.currentTimeMillis());
            engine.serveReplay();
            if (work == 0) {
                ingest.idle(10);
            }
        }
    }
}
