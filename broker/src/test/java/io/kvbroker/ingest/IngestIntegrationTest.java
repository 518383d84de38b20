package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.testing.Await;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/**
 * 50 simulated engines over real ZeroMQ sockets on loopback, with injected faults: each engine's applied history
 * must equal what its current incarnation published, exactly once and in order.
 */
class IngestIntegrationTest {
    private static final int ENGINES = 50;
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(1_000, 5, 60_000, 100_000, 10_000);

    @Test
    void everyEngineHistoryIsExactUnderGapsCutReplaysRestartsAndVoids() throws Exception {
        List<SimulatedEngine.Options> fleet = new ArrayList<>(Simulator.fleet(ENGINES, 11));
        // Engine 5 keeps a short replay buffer, so a long outage of its live stream cannot be replayed.
        SimulatedEngine.Options small = fleet.get(5);
        fleet.set(5, new SimulatedEngine.Options(small.pod(), small.rank(), small.model(), small.topic(),
                small.form(), 20, small.routerHighWaterMark(), small.shape(), small.seed()));
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (Simulator simulator = new Simulator(fleet, 0, 25).start()) {
            List<EngineSpec> specs = simulator.specs();
            List<Integer> ids = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                ids.add(registry.register(specs.get(i)));
            }
            ingest.start();
            Await.until("5 engines live", Duration.ofSeconds(30), () -> allLive(ingest, ids));
            // Compared as sets, not counts: threads left by earlier tests in this JVM may end in between.
            java.util.Set<Thread> threadsWithFive = Thread.getAllStackTraces().keySet();
            for (int i = 5; i < ENGINES; i++) {
                int id = registry.register(specs.get(i));
                ids.add(id);
                ingest.add(id);
            }
            Await.until("50 engines live", Duration.ofSeconds(60), () -> allLive(ingest, ids));
            java.util.Set<Thread> threadsWithFifty = new java.util.HashSet<>(Thread.getAllStackTraces().keySet());
            threadsWithFifty.removeAll(threadsWithFive);
            assertThat(threadsWithFifty).as("threads started while adding 45 engines").isEmpty();

            // Faults, each on its own engine.
            simulator.call(engines -> {
                engines.get(1).dropLive(3);
                engines.get(2).cutNextReplayAfter(2);
                engines.get(2).dropLive(10);
                engines.get(3).restart();
                engines.get(5).dropLive(60);
                return null;
            });
            long cursorBeforeOutage = ingest.stream(ids.get(4)).cursor();
            simulator.call(engines -> {
                engines.get(4).goAway();
                engines.get(4).restart();
                return null;
            });
            // While away, the restarted engine publishes past the cursor kvbroker holds for it.
            Await.until("engine 4 to pass its old cursor offline", Duration.ofSeconds(30),
                    () -> simulator.call(engines -> engines.get(4).nextSequence()) > cursorBeforeOutage + 10);
            simulator.call(engines -> {
                engines.get(4).comeBack();
                return null;
            });
            Await.until("engine 4 back", Duration.ofSeconds(30),
                    () -> ingest.stream(ids.get(4)).incarnation() == 2 && ingest.stream(ids.get(4)).cursor() > 5);
            // A lost run is only found when a live batch after it arrives: wait for each fault to be seen.
            Await.until("the faults to be seen", Duration.ofSeconds(30), () ->
                    ingest.stream(ids.get(1)).counters().get(Counter.GAPS) > 0
                            && ingest.stream(ids.get(2)).counters().get(Counter.REPLAY_TIMEOUTS) > 0
                            && ingest.stream(ids.get(5)).counters().get(Counter.VOIDS) > 0);
            simulator.setStepping(false);
            Await.until("every engine caught up", Duration.ofSeconds(30),
                    () -> lagging(simulator, ingest, ids).isEmpty(), () -> lagging(simulator, ingest, ids));

            for (int i = 0; i < ENGINES; i++) {
                int engineIndex = i;
                int id = ids.get(i);
                List<Double> published = simulator.call(engines -> new ArrayList<>(
                        engines.get(engineIndex).publishedTimestamps()));
                List<Long> applied = sink.sequencesSinceLastReset(id);
                assertThat(applied).as("engine %d applied something", i).isNotEmpty();
                long first = applied.get(0);
                assertThat(applied).as("engine %d: exactly once, in order", i)
                        .containsExactlyElementsOf(LongStream.range(first, published.size()).boxed().toList());
                for (Object event : sink.all(id)) {
                    if (event instanceof RecordingSink.Applied a && a.incarnation()
                            == ingest.stream(id).incarnation() && a.sequence() >= first) {
                        assertThat(a.timestamp()).as("engine %d seq %d is the batch it published", i, a.sequence())
                                .isEqualTo(published.get((int) a.sequence()));
                    }
                }
                EngineCounters counters = ingest.stream(id).counters();
                if (i == 5) {
                    assertThat(counters.get(Counter.VOIDS)).as("engine 5 voids").isOne();
                    assertThat(first).isPositive();
                } else {
                    assertThat(counters.get(Counter.VOIDS)).as("engine %d voids", i).isZero();
                    assertThat(first).as("engine %d history starts at 0: %s; counters gaps %d, replays %d, timeouts %d,"
                            + " restarts %d/%d", i, resets(sink.all(id)), counters.get(Counter.GAPS),
                            counters.get(Counter.REPLAYS_REQUESTED), counters.get(Counter.REPLAY_TIMEOUTS),
                            counters.get(Counter.RESTARTS_BY_SEQUENCE), counters.get(Counter.RESTARTS_BY_FINGERPRINT))
                            .isZero();
                }
                long expectedIncarnation = i == 3 || i == 4 ? 2 : 1;
                assertThat(ingest.stream(id).incarnation()).as("engine %d incarnation", i)
                        .isEqualTo(expectedIncarnation);
                assertThat(counters.get(Counter.DECODE_ERRORS)).isZero();
            }
            assertThat(ingest.stream(ids.get(1)).counters().get(Counter.GAPS)).isPositive();
            assertThat(ingest.stream(ids.get(2)).counters().get(Counter.REPLAY_TIMEOUTS)).isPositive();
            assertThat(ingest.stream(ids.get(3)).counters().get(Counter.RESTARTS_BY_SEQUENCE)).isOne();
            assertThat(ingest.stream(ids.get(4)).counters().get(Counter.RESTARTS_BY_FINGERPRINT)).isOne();
            assertThat(ingest.stream(ids.get(4)).counters().get(Counter.RESTARTS_BY_SEQUENCE)).isZero();
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * The same kind of fleet configured as vLLM runs by default, without replay endpoints: nothing lost can be had
     * again, so each fault must end in the history the live stream allows, never in an old process's blocks or a new
     * process's batches taken for duplicates. Engine 1 loses batches on the way (voided), engine 2 restarts in place,
     * engine 3's process is replaced (its port closed and bound again), engine 4 is away while it goes on publishing
     * (voided on return); the others are untouched.
     */
    @Test
    void everyEngineHistoryIsWhatTheLiveStreamAllowsWithoutReplayEndpoints() throws Exception {
        int engines = 10;
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        Simulator simulator = new Simulator(Simulator.fleet(engines, 12), 0, 25);
        simulator.setStepping(false);
        try (simulator) {
            simulator.start();
            List<Integer> ids = new ArrayList<>();
            for (EngineSpec spec : simulator.specs(false)) {
                ids.add(registry.register(spec));
            }
            ingest.start();
            Await.until("every engine subscribed", Duration.ofSeconds(30), () -> simulator.call(
                    all -> all.stream().allMatch(engine -> engine.subscriptions() >= 1)));
            simulator.setStepping(true);
            Await.until("every engine live past 40", Duration.ofSeconds(30), () -> ids.stream().allMatch(id ->
                    ingest.stream(id) != null && ingest.stream(id).state() == EngineState.LIVE
                            && ingest.stream(id).cursor() > 40));
            simulator.call(all -> {
                all.get(1).dropLive(3);
                all.get(2).restart();
                all.get(3).goAway();
                all.get(3).restart();
                all.get(3).comeBack();
                all.get(4).goAway();
                return null;
            });
            long awayAt = simulator.call(all -> all.get(4).nextSequence());
            Await.until("engine 4 to publish while away", Duration.ofSeconds(30),
                    () -> simulator.call(all -> all.get(4).nextSequence()) > awayAt + 5);
            simulator.call(all -> {
                all.get(4).comeBack();
                return null;
            });
            Await.until("the faults seen", Duration.ofSeconds(30), () -> ingest.stream(ids.get(1)).counters()
                    .get(Counter.VOIDS) == 1 && ingest.stream(ids.get(2)).incarnation() == 2
                    && ingest.stream(ids.get(3)).incarnation() == 2
                    && ingest.stream(ids.get(4)).counters().get(Counter.VOIDS) == 1);
            simulator.setStepping(false);
            Await.until("every engine caught up", Duration.ofSeconds(30), () -> simulator.call(all -> {
                for (int i = 0; i < engines; i++) {
                    if (ingest.stream(ids.get(i)).cursor() != all.get(i).nextSequence() - 1) {
                        return false;
                    }
                }
                return true;
            }));

            for (int i = 0; i < engines; i++) {
                int engineIndex = i;
                int id = ids.get(i);
                EngineStream stream = ingest.stream(id);
                List<Double> published = simulator.call(all -> new ArrayList<>(
                        all.get(engineIndex).publishedTimestamps()));
                List<Double> held = sink.timestampsSinceLastReset(id);
                assertThat(held).as("engine %d holds a run of its current process's batches, in order", i)
                        .isEqualTo(published.subList(published.size() - held.size(), published.size()));
                boolean whole = held.size() == published.size();
                assertThat(stream.historyPartial()).as("engine %d partial exactly when batches are missing", i)
                        .isEqualTo(!whole);
                assertThat(stream.incarnation()).as("engine %d incarnation", i).isEqualTo(i == 2 || i == 3 ? 2 : 1);
                assertThat(stream.counters().get(Counter.VOIDS)).as("engine %d voids", i)
                        .isEqualTo(i == 1 || i == 4 ? 1 : 0);
                assertThat(stream.counters().get(Counter.RESTARTS_BY_SEQUENCE)).as("engine %d restarts", i)
                        .isEqualTo(i == 2 || i == 3 ? 1 : 0);
                assertThat(stream.counters().get(Counter.DUPLICATES)).as("engine %d duplicates", i).isZero();
                if (i == 0 || i > 4) {
                    assertThat(whole).as("engine %d untouched holds everything", i).isTrue();
                }
            }
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /** The resets and unknown ranges in a recorded history, with the sequence applied just before each. */
    private static List<String> resets(List<Object> events) {
        List<String> marks = new ArrayList<>();
        long last = -1;
        for (Object event : events) {
            if (event instanceof RecordingSink.Applied applied) {
                last = applied.sequence();
            } else {
                marks.add(event + " after " + last);
            }
        }
        return marks;
    }

    /** Engines whose applied cursor is not the last sequence they published, described for a failure message. */
    private static List<String> lagging(Simulator simulator, ZmqIngest ingest, List<Integer> ids) {
        return simulator.call(engines -> {
            List<String> behind = new ArrayList<>();
            for (int i = 0; i < ENGINES; i++) {
                EngineStream stream = ingest.stream(ids.get(i));
                if (stream.cursor() != engines.get(i).nextSequence() - 1) {
                    behind.add("engine " + i + " " + stream.state() + " cursor " + stream.cursor() + " published "
                            + (engines.get(i).nextSequence() - 1));
                }
            }
            return behind;
        });
    }

    private static boolean allLive(ZmqIngest ingest, List<Integer> ids) {
        for (int id : ids) {
            EngineStream stream = ingest.stream(id);
            if (stream == null || stream.state() != EngineState.LIVE || stream.cursor() < 3) {
                return false;
            }
        }
        return true;
    }
}
