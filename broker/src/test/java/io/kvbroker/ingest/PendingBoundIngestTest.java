package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.EngineRegistry;
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

/**
 * The bound on live batches held while a replay runs ({@code ingest.maxPendingBatches}, 16 here), filled for real
 * over ZeroMQ: an engine's replay answers are read from its buffer when asked but reach the broker late (held, or
 * slowed as over a slow link) while its live stream runs on, so live batches past the bound are dropped and counted.
 * They must still reach the sink from the engine's buffer, each once and in order, with a void only where the buffer
 * no longer held them; an engine beside it, answering at once, is unaffected.
 */
class PendingBoundIngestTest {
    private static final int MAX_PENDING = 16;
    /** A replay may go 30 s without a reply: longer than any answer is held here, so none is given up on. */
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(30_000, 3, 60_000, MAX_PENDING, 10_000);
    private static final int STEPS_PER_SECOND = 200;
    private static final int SMALL_BUFFER = 40;
    private static final Duration WAIT = Duration.ofSeconds(30);

    /**
     * Two engines lose a live batch each and their replay answers are held while they publish hundreds more, then
     * they fall quiet (an idle vLLM publishes nothing) and the answers arrive: the batches dropped past the bound are
     * asked for as soon as the queue drains, not when a later live batch shows the gap, which for an idle engine
     * may be never. The engine whose buffer keeps 10,000 batches ends exact; the one keeping 40 is voided once, for
     * exactly the batches its buffer no longer held.
     */
    @Test
    void batchesDroppedPastTheBoundAreReplayedOnceTheQueueDrainsEvenIfTheEngineFallsQuiet() throws Exception {
        List<SimulatedEngine.Options> fleet = new ArrayList<>(Simulator.fleet(3, 61));
        fleet.set(2, fleet.get(2).withBufferSteps(SMALL_BUFFER));
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (Simulator simulator = new Simulator(fleet, 0, STEPS_PER_SECOND).start()) {
            List<Integer> ids = startLive(simulator, registry, ingest);
            int held = ids.get(0);
            int beside = ids.get(1);
            int small = ids.get(2);
            // A lost batch makes ingest ask for a replay; the engine reads the answer from its buffer now and holds it.
            simulator.call(engines -> {
                for (int i : new int[] {0, 2}) {
                    engines.get(i).delayReplays(Long.MAX_VALUE);
                    engines.get(i).dropLive(1);
                }
                return null;
            });
            Await.until("live batches dropped past the bound", WAIT,
                    () -> overflows(ingest, held) >= 200 && overflows(ingest, small) >= 200);
            // The engines fall quiet; then the held answers arrive.
            simulator.setStepping(false);
            simulator.call(engines -> {
                engines.get(0).delayReplays(0);
                engines.get(2).delayReplays(0);
                return null;
            });
            long[] next = awaitCaughtUp(simulator, ingest, ids);

            EngineCounters counters = ingest.stream(held).counters();
            assertThat(counters.get(Counter.VOIDS)).isZero();
            assertThat(counters.get(Counter.REPLAYED_BATCHES)).as("every dropped batch came back by replay")
                    .isGreaterThanOrEqualTo(counters.get(Counter.PENDING_OVERFLOWS));
            assertExact(simulator, sink, ingest, 0, held);
            assertUnaffected(simulator, sink, ingest, 1, beside);

            EngineCounters smallCounters = ingest.stream(small).counters();
            assertThat(smallCounters.get(Counter.VOIDS)).isOne();
            List<Object> events = sink.all(small);
            int voidAt = events.indexOf(ResetReason.VOID);
            long[] lost = range((String) events.get(voidAt + 1));
            assertThat(lost[1]).as("voided exactly up to what the buffer still held")
                    .isEqualTo(next[2] - SMALL_BUFFER - 1);
            List<Long> before = applied(events.subList(0, voidAt));
            assertThat(before).as("before the void: contiguous, up to the first lost batch")
                    .containsExactlyElementsOf(LongStream.range(before.get(0), lost[0]).boxed().toList());
            assertThat(sink.sequencesSinceLastReset(small))
                    .containsExactlyElementsOf(LongStream.range(lost[1] + 1, next[2]).boxed().toList());
            long unknown = events.stream().filter(String.class::isInstance)
                    .mapToLong(e -> range((String) e)[1] - range((String) e)[0] + 1).sum();
            assertThat(smallCounters.get(Counter.UNKNOWN_HISTORY_BATCHES)).as("every lost batch counted")
                    .isEqualTo(unknown);
            System.out.printf("held replay: engine 0 %d overflows, %d replayed, no void; engine 2 (buffer %d) %d"
                    + " overflows, void of %d..%d; engine 1 unaffected%n", counters.get(Counter.PENDING_OVERFLOWS),
                    counters.get(Counter.REPLAYED_BATCHES), SMALL_BUFFER,
                    smallCounters.get(Counter.PENDING_OVERFLOWS), lost[0], lost[1]);
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /**
     * Every replay answer of one engine takes 250 ms, in which some 50 live batches arrive: each replay overflows the
     * bound again, round after round, yet the cursor moves on (no livelock); once answers are prompt the engine is
     * LIVE and drops nothing more, and its history is exact.
     */
    @Test
    void repliesSlowerThanTheBoundFillsOverflowItEveryRoundYetTheHistoryEndsExact() throws Exception {
        RecordingSink sink = new RecordingSink();
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, sink, LIMITS, ListenSettings.OFF, 100_000, 50,
                System::currentTimeMillis);
        try (Simulator simulator = new Simulator(Simulator.fleet(2, 62), 0, STEPS_PER_SECOND).start()) {
            List<Integer> ids = startLive(simulator, registry, ingest);
            int slow = ids.get(0);
            EngineStream stream = ingest.stream(slow);
            long replaysBefore = stream.counters().get(Counter.REPLAYS_REQUESTED);
            simulator.call(engines -> {
                engines.get(0).delayReplays(250);
                engines.get(0).dropLive(1);
                return null;
            });
            Await.until("five slow replays, overflowing the bound", WAIT, () -> stream.counters()
                    .get(Counter.REPLAYS_REQUESTED) >= replaysBefore + 5 && overflows(ingest, slow) >= 5 * 20);
            long cursorThen = stream.cursor();
            long replaysThen = stream.counters().get(Counter.REPLAYS_REQUESTED);
            Await.until("the cursor moving on through slow replays", WAIT, () -> stream.cursor() > cursorThen + 200
                    && stream.counters().get(Counter.REPLAYS_REQUESTED) > replaysThen + 2);
            long overflowsSlow = overflows(ingest, slow);

            simulator.call(engines -> {
                engines.get(0).delayReplays(0);
                return null;
            });
            Await.until("live again", WAIT, () -> stream.state() == EngineState.LIVE);
            long overflowsLive = overflows(ingest, slow);
            long cursorLive = stream.cursor();
            Await.until("live batches applied", WAIT, () -> stream.cursor() > cursorLive + 200);
            assertThat(overflows(ingest, slow)).as("nothing dropped once answers are prompt").isEqualTo(overflowsLive);
            simulator.setStepping(false);
            awaitCaughtUp(simulator, ingest, ids);

            EngineCounters counters = stream.counters();
            assertThat(counters.get(Counter.VOIDS)).isZero();
            assertThat(counters.get(Counter.REPLAYED_BATCHES)).as("every dropped batch came back by replay")
                    .isGreaterThanOrEqualTo(counters.get(Counter.PENDING_OVERFLOWS));
            assertExact(simulator, sink, ingest, 0, slow);
            assertUnaffected(simulator, sink, ingest, 1, ids.get(1));
            System.out.printf("slow replies: %d replays requested, %d overflows while slow (%d in all), %d replayed,"
                    + " no void; engine 1 unaffected%n", counters.get(Counter.REPLAYS_REQUESTED), overflowsSlow,
                    counters.get(Counter.PENDING_OVERFLOWS), counters.get(Counter.REPLAYED_BATCHES));
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    /** Registers the simulator's engines, starts ingest and waits until each is live; returns their ids in order. */
    private static List<Integer> startLive(Simulator simulator, EngineRegistry registry, ZmqIngest ingest)
            throws InterruptedException {
        List<Integer> ids = new ArrayList<>();
        simulator.specs().forEach(spec -> ids.add(registry.register(spec)));
        ingest.start();
        Await.until("every engine live", WAIT, () -> ids.stream().allMatch(id -> ingest.stream(id) != null
                && ingest.stream(id).state() == EngineState.LIVE && ingest.stream(id).cursor() > 5));
        return ids;
    }

    /** Waits until every engine's last published batch is applied (the engines no longer step); returns them. */
    private static long[] awaitCaughtUp(Simulator simulator, ZmqIngest ingest, List<Integer> ids)
            throws InterruptedException {
        long[] next = simulator.call(engines -> engines.stream().mapToLong(SimulatedEngine::nextSequence).toArray());
        try {
            Await.until("every engine caught up", WAIT, () -> LongStream.range(0, ids.size())
                    .allMatch(i -> ingest.stream(ids.get((int) i)).cursor() == next[(int) i] - 1));
        } catch (AssertionError e) {
            List<String> where = new ArrayList<>();
            for (int i = 0; i < ids.size(); i++) {
                EngineStream stream = ingest.stream(ids.get(i));
                where.add("engine " + i + " " + stream.state() + " cursor " + stream.cursor() + " of " + (next[i] - 1));
            }
            throw new AssertionError(e.getMessage() + ": " + where, e);
        }
        return next;
    }

    private static long overflows(ZmqIngest ingest, int id) {
        return ingest.stream(id).counters().get(Counter.PENDING_OVERFLOWS);
    }

    /** Every batch the engine published applied once, in order, each the one published: no reset, no loss. */
    private static void assertExact(Simulator simulator, RecordingSink sink, ZmqIngest ingest, int engine, int id) {
        sink.assertExactly(id, simulator.call(engines -> new ArrayList<>(engines.get(engine).publishedTimestamps())),
                "engine " + engine);
        assertThat(ingest.stream(id).counters().get(Counter.DECODE_ERRORS)).isZero();
    }

    /** An engine whose replays were prompt: exact, nothing dropped from its queue, never voided. */
    private static void assertUnaffected(Simulator simulator, RecordingSink sink, ZmqIngest ingest, int engine,
            int id) {
        assertExact(simulator, sink, ingest, engine, id);
        assertThat(overflows(ingest, id)).isZero();
        assertThat(ingest.stream(id).counters().get(Counter.VOIDS)).isZero();
    }

    private static List<Long> applied(List<Object> events) {
        return events.stream().filter(RecordingSink.Applied.class::isInstance)
                .map(e -> ((RecordingSink.Applied) e).sequence()).toList();
    }

    /** The range of a recorded "unknown FROM..TO". */
    private static long[] range(String unknown) {
        String[] bounds = unknown.substring("unknown ".length()).split("\\.\\.");
        return new long[] {Long.parseLong(bounds[0]), Long.parseLong(bounds[1])};
    }
}
