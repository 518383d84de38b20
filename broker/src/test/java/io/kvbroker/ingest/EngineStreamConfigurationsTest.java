package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.core.Xxh64;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineStreamTest.FakeEngine;
import io.kvbroker.ingest.IngestSink.ResetReason;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Restarts, gaps, reconnects, silence and broker restarts, each in both configurations an engine runs in: with a
 * replay endpoint, and without one (vLLM's default). Each case asserts the history the index ends with (which
 * incarnation's batches, which sequences, each the batch that process published), the incarnation, the restarts
 * counted and whether the history is marked partial.
 *
 * <p>Without a replay endpoint nothing published while the broker could not hear it can be had: the expected history
 * is then what the live stream carried, with the loss counted and the engine marked partial, never an old process's
 * blocks kept or a new process's batches dropped as duplicates.
 */
class EngineStreamConfigurationsTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(100, 3, 1000, 1000, 5_000);

    private final RecordingSink sink = new RecordingSink();
    private long now = 1_000;
    /** Replay requests answered so far. */
    private int answered;

    private EngineStream stream(FakeEngine engine) {
        return new EngineStream(0, "test/0", sink, new KvEventDecoder(), engine, LIMITS, now);
    }

    /** Answers the stream's new replay requests until it asks no more (nothing, without a replay endpoint). */
    private void settle(EngineStream stream, FakeEngine engine) {
        while (answered < engine.requests.size()) {
            long from = engine.requests.get(answered++);
            for (ReplayMessage reply : engine.replies(from)) {
                stream.onReplay(reply, now);
            }
        }
    }

    private void connect(EngineStream stream, FakeEngine engine) {
        stream.onConnected(now);
        stream.onGreeted();
        settle(stream, engine);
    }

    /** The engine publishes {@code count} batches that reach the broker live. */
    private void live(EngineStream stream, FakeEngine engine, int count) {
        for (int i = 0; i < count; i++) {
            byte[] payload = engine.publish();
            stream.onLive(engine.next - 1, payload, now);
            settle(stream, engine);
        }
    }

    /** The engine publishes {@code count} batches the broker never hears live (it is away, or they are dropped). */
    private static void unheard(FakeEngine engine, int count) {
        for (int i = 0; i < count; i++) {
            engine.publish();
        }
    }

    /** The batches of the engine's process number {@code restarts} from {@code from} to {@code to}, as applied. */
    private static List<Double> published(int restarts, long from, long to) {
        List<Double> stamps = new ArrayList<>();
        for (long seq = from; seq <= to; seq++) {
            stamps.add(restarts * 1e6 + seq);
        }
        return stamps;
    }

    /** The index holds exactly {@code held}, in the given incarnation, after {@code restarts}, partial or whole. */
    private void assertHolds(EngineStream stream, List<Double> held, long incarnation, long restarts,
            boolean partial) {
        assertThat(sink.timestampsSinceLastReset(0)).as("what the index holds").isEqualTo(held);
        assertThat(stream.incarnation()).as("incarnation").isEqualTo(incarnation);
        assertThat(restarts(stream)).as("restarts").isEqualTo(restarts);
        assertThat(stream.historyPartial()).as("history partial").isEqualTo(partial);
    }

    private static long restarts(EngineStream stream) {
        return stream.counters().get(Counter.RESTARTS_BY_SEQUENCE)
                + stream.counters().get(Counter.RESTARTS_BY_FINGERPRINT);
    }

    /** A stream whose engine published nothing before the broker connected, then {@code batches} live. */
    private EngineStream liveFromTheStart(FakeEngine engine, int batches) {
        EngineStream stream = stream(engine);
        connect(stream, engine);
        live(stream, engine, batches);
        return stream;
    }

    /**
     * The scenario: batches before the broker, three live, then the process restarts (its PUB closes, a new
     * process binds the same port and publishes a fresh history from 0). Without a replay endpoint the first live
     * batch of the new connection, at or below the cursor, is the new process: not a duplicate.
     */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aRestartAcrossAReconnectReplacesTheOldProcessesBlocksWithTheNewOnes(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        unheard(engine, 10);
        EngineStream stream = stream(engine);
        connect(stream, engine);
        live(stream, engine, 3);
        assertThat(sink.timestampsSinceLastReset(0)).isEqualTo(replay ? published(0, 0, 12) : published(0, 10, 12));
        assertThat(stream.historyPartial()).as("batches 0..9 were before the broker").isEqualTo(!replay);

        stream.onDisconnected(now);
        engine.restart();
        connect(stream, engine);
        live(stream, engine, 3);

        assertHolds(stream, published(1, 0, 2), 2, 1, false);
        assertThat(stream.counters().get(Counter.DUPLICATES)).isZero();
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isEqualTo(2);
    }

    /** As above, but the new process's first batch is read before the connection event that announced it. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aRestartWhoseFirstBatchArrivesBeforeTheConnectionEventIsFoundToo(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 8);
        engine.restart();
        live(stream, engine, 1);
        connect(stream, engine);
        live(stream, engine, 2);

        assertHolds(stream, published(1, 0, 2), 2, 1, false);
    }

    /**
     * A process restarted while the broker was disconnected, that published a few batches before the broker was back
     * (below the old cursor): replayed with an endpoint; without one lost, counted as a gap, and the engine marked.
     */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aRestartWhileDisconnectedBelowTheCursorIsANewIncarnation(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 13);
        stream.onDisconnected(now);
        engine.restart();
        unheard(engine, 3);
        connect(stream, engine);
        live(stream, engine, 2);

        if (replay) {
            assertHolds(stream, published(1, 0, 4), 2, 1, false);
        } else {
            assertHolds(stream, published(1, 3, 4), 2, 1, true);
            assertThat(sink.all(0)).contains("unknown 0..2");
            assertThat(stream.counters().get(Counter.GAPS)).isOne();
        }
    }

    /**
     * A process restarted while the broker was disconnected that passed the old cursor before the broker was back.
     * With a replay endpoint the batch at the cursor differs: a restart, replayed from 0. Without one it cannot be
     * told from the same process having gone on: a gap, so the engine is voided (the old blocks go either way).
     */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aRestartWhileDisconnectedPastTheCursorNeverKeepsTheOldBlocks(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 5);
        stream.onDisconnected(now);
        engine.restart();
        unheard(engine, 10);
        connect(stream, engine);
        live(stream, engine, 2);

        if (replay) {
            assertHolds(stream, published(1, 0, 11), 2, 1, false);
        } else {
            assertHolds(stream, published(1, 10, 11), 1, 0, true);
            assertThat(stream.counters().get(Counter.VOIDS)).isOne();
        }
    }

    /** A reconnect to the same process that published nothing meanwhile: the history goes on, nothing reset. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aReconnectToTheSameProcessGoesOn(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 6);
        stream.onDisconnected(now);
        connect(stream, engine);
        live(stream, engine, 3);

        assertThat(sink.all(0)).noneMatch(ResetReason.class::isInstance);
        assertHolds(stream, published(0, 0, 8), 1, 0, false);
        assertThat(stream.counters().get(Counter.CONNECTIONS)).isEqualTo(2);
    }

    /** A reconnect to the same process that published while the broker was away: replayed, or voided and marked. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void batchesPublishedWhileDisconnectedAreReplayedOrTheEngineVoided(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 6);
        stream.onDisconnected(now);
        unheard(engine, 4);
        connect(stream, engine);
        live(stream, engine, 2);

        if (replay) {
            assertHolds(stream, published(0, 0, 11), 1, 0, false);
            assertThat(stream.counters().get(Counter.VOIDS)).isZero();
        } else {
            assertHolds(stream, published(0, 10, 11), 1, 0, true);
            assertThat(sink.all(0)).contains(ResetReason.VOID, "unknown 6..9");
        }
    }

    /** A batch lost on a live connection: replayed, or the engine voided and marked. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aGapInTheLiveStreamIsReplayedOrVoided(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 4);
        unheard(engine, 2);
        live(stream, engine, 3);

        assertThat(stream.counters().get(Counter.GAPS)).isOne();
        if (replay) {
            assertHolds(stream, published(0, 0, 8), 1, 0, false);
        } else {
            assertHolds(stream, published(0, 6, 8), 1, 0, true);
            assertThat(stream.counters().get(Counter.VOIDS)).isOne();
        }
    }

    /** A restart on the same connection (the sequence goes back): a new incarnation from its first batch. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aSequenceGoingBackwardsOnOneConnectionIsANewIncarnation(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 7);
        engine.restart();
        live(stream, engine, 4);

        assertHolds(stream, published(1, 0, 3), 2, 1, false);
        assertThat(stream.counters().get(Counter.RESTARTS_BY_SEQUENCE)).isOne();
    }

    /**
     * Discovery saw the container replaced before the new process's batches arrived: a new incarnation at once, then
     * what the new process published (replayed from 0, or from the first batch heard, the rest counted as lost).
     */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aRestartSignalledByDiscoveryStartsANewIncarnation(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 5);
        engine.restart();
        unheard(engine, 2);
        stream.onRestartSignalled(now);
        settle(stream, engine);
        live(stream, engine, 2);

        assertThat(stream.counters().get(Counter.RESTARTS_SIGNALLED)).isOne();
        if (replay) {
            assertHolds(stream, published(1, 0, 3), 2, 0, false);
        } else {
            assertHolds(stream, published(1, 2, 3), 2, 0, true);
            assertThat(sink.all(0)).contains(ResetReason.RESTART_SIGNALLED, "unknown 0..1");
        }
    }

    /** An engine that goes quiet is SILENT with its blocks kept, and LIVE again when it speaks. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void silenceKeepsTheBlocksAndTheEngineResumes(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = liveFromTheStart(engine, 5);
        now += LIMITS.silentAfterMs();
        stream.onTick(now);
        assertThat(stream.state()).isEqualTo(EngineState.SILENT);
        settle(stream, engine);
        assertThat(stream.state()).as("the probe's empty answer leaves it silent").isEqualTo(EngineState.SILENT);
        live(stream, engine, 2);

        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(sink.all(0)).noneMatch(ResetReason.class::isInstance);
        assertHolds(stream, published(0, 0, 6), 1, 0, false);
    }

    /** Where a broker that restarted left the engine: the last applied batch, as the journal keeps it. */
    private EngineStream resumedAt(FakeEngine engine, EngineStream before) {
        byte[] last = engine.buffer.get((int) (before.cursor() - engine.firstBuffered));
        sink.events.clear();
        EngineStream after = stream(engine);
        after.resume(new EngineStream.Resume(before.incarnation(), before.cursor(), Xxh64.hash(last), new byte[0]));
        return after;
    }

    /** The engine restarted while the broker was down, and is below the broker's cursor when it comes back. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void anEngineRestartedWhileTheBrokerWasDownIsANewIncarnation(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = resumedAt(engine, liveFromTheStart(engine, 12));
        engine.restart();
        connect(stream, engine);
        live(stream, engine, 3);

        assertThat(sink.all(0).get(0)).isInstanceOf(ResetReason.class);
        assertHolds(stream, published(1, 0, 2), 2, 1, false);
    }

    /** The same process went on while the broker was down: replayed from the cursor, or voided and marked. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void anEngineThatWentOnWhileTheBrokerWasDownIsContinued(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = resumedAt(engine, liveFromTheStart(engine, 12));
        unheard(engine, 3);
        connect(stream, engine);
        live(stream, engine, 2);

        if (replay) {
            assertThat(sink.all(0)).noneMatch(ResetReason.class::isInstance);
            assertHolds(stream, published(0, 12, 16), 1, 0, false);
        } else {
            assertThat(sink.all(0)).contains(ResetReason.VOID, "unknown 12..14");
            assertHolds(stream, published(0, 15, 16), 1, 0, true);
        }
    }

    /** The same process, idle while the broker was down: its next batch follows on from the journal's cursor. */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void anEngineIdleWhileTheBrokerWasDownFollowsOnFromTheCursor(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = resumedAt(engine, liveFromTheStart(engine, 12));
        connect(stream, engine);
        live(stream, engine, 2);

        assertThat(sink.all(0)).noneMatch(ResetReason.class::isInstance);
        assertHolds(stream, published(0, 12, 13), 1, 0, false);
    }

    /** Connected but quiet is its own state, not CONNECTING (which reads as unreachable). */
    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void aConnectedEngineThatHasPublishedNothingIsShownConnected(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = stream(engine);
        assertThat(stream.state()).isEqualTo(EngineState.CONNECTING);
        connect(stream, engine);
        assertThat(stream.state()).isEqualTo(EngineState.CONNECTED);
        stream.onDisconnected(now);
        assertThat(stream.state()).isEqualTo(EngineState.CONNECTING);
        connect(stream, engine);
        live(stream, engine, 1);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        stream.onDisconnected(now);
        assertThat(stream.state()).as("a live engine's blocks stand until it restarts or falls silent")
                .isEqualTo(EngineState.LIVE);
    }
}
