package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException.Reason;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineStreamTest.FakeEngine;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Replay answers that can never satisfy (a hole every time, a stray batch far ahead) and absurd sequence jumps: the
 * requests stay within {@code replayMaxAttempts} and {@code replayMinIntervalMs}, the engine ends LIVE or VOID, and the
 * lost-batch count and lag stay what was really lost. Issue 16, part C.
 */
class ReplayStormTest {
    private static final int MAX_ATTEMPTS = 3;
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(100, MAX_ATTEMPTS, 1000, 1000, 5_000);
    /** More requests than this is a storm: the loops stop there, so an old build fails rather than hangs. */
    private static final int STORM = 100;

    private final RecordingSink sink = new RecordingSink();
    private long now = 1_000;

    private EngineStream stream(FakeEngine engine, EngineStream.Limits limits) {
        return new EngineStream(0, "test/0", sink, new KvEventDecoder(), engine, limits, now);
    }

    /** Answers every request the stream makes with the engine's replies as {@code edit} changes them. */
    private void answerAll(EngineStream stream, FakeEngine engine, UnaryOperator<List<ReplayMessage>> edit) {
        int answered = 0;
        while (answered < engine.requests.size() && answered < STORM) {
            answered++;
            for (ReplayMessage reply : edit.apply(engine.replies(engine.lastRequest()))) {
                stream.onReplay(reply, now);
            }
        }
    }

    /** A stream that found an engine holding {@code published} batches and had every request answered as edited. */
    private EngineStream firstContact(FakeEngine engine, int published, EngineStream.Limits limits,
            UnaryOperator<List<ReplayMessage>> edit) {
        for (int i = 0; i < published; i++) {
            engine.publish();
        }
        EngineStream stream = stream(engine, limits);
        stream.onConnected(now);
        answerAll(stream, engine, edit);
        return stream;
    }

    private static UnaryOperator<List<ReplayMessage>> without(long sequence) {
        return replies -> replies.stream().filter(r -> r.isEnd() || r.sequence() != sequence).toList();
    }

    /** The replies with a stray batch at {@code sequence} inserted before the end marker. */
    private static UnaryOperator<List<ReplayMessage>> withStray(long sequence) {
        return replies -> {
            List<ReplayMessage> edited = new ArrayList<>(replies);
            ReplayMessage last = edited.get(edited.size() - 2);
            edited.add(edited.size() - 1, new ReplayMessage(new byte[0], sequence, last.payload()));
            return edited;
        };
    }

    @Test
    void aHoleInEveryAnswerIsAskedAboutAtMostTheAttemptLimitThenVoided() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = firstContact(engine, 6, LIMITS, without(3));

        // The first request, then the continuations that found the same hole: the last of them voids it.
        assertThat(engine.requests).hasSize(1 + MAX_ATTEMPTS);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isEqualTo(5);
        assertThat(stream.counters().get(Counter.VOIDS)).isEqualTo(1);
        assertThat(stream.counters().get(Counter.UNKNOWN_HISTORY_BATCHES)).isEqualTo(1);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(4L, 5L);
    }

    @Test
    void aHoleBeforeQueuedLiveBatchesIsVoidedAndTheQueueApplied() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine, LIMITS);
        stream.onConnected(now);
        answerAll(stream, engine, UnaryOperator.identity());
        stream.onLive(0, engine.publish(), now);
        for (int i = 0; i < 4; i++) {
            engine.publish();
        }
        // 1..4 missed live; 5 shows the gap while the engine's buffer has lost 2.
        stream.onLive(5, engine.publish(), now);
        int before = engine.requests.size();
        answerAll(stream, engine, without(2));

        assertThat(engine.requests.size() - before).isLessThanOrEqualTo(1 + MAX_ATTEMPTS);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isEqualTo(5);
        assertThat(stream.counters().get(Counter.UNKNOWN_HISTORY_BATCHES)).isEqualTo(1);
    }

    @Test
    void aStrayFarAheadInAnAnswerIsDroppedNotChased() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = firstContact(engine, 4, LIMITS, withStray(Long.MAX_VALUE));

        assertThat(engine.requests).hasSize(1);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isEqualTo(3);
        assertThat(stream.lastHeardSequence()).isEqualTo(3);
        assertThat(stream.counters().get(Counter.UNKNOWN_HISTORY_BATCHES)).isZero();
        assertThat(stream.counters().decodeErrors(Reason.IMPLAUSIBLE_SEQUENCE)).isEqualTo(1);

        // The stream goes on from the real sequence.
        stream.onLive(4, engine.publish(), now);
        assertThat(stream.cursor()).isEqualTo(4);
    }

    @Test
    void aStrayJustWithinTheBoundIsAHoleGivenUpOnWithinTheAttemptLimit() {
        long stray = 3 + EngineStream.MAX_SEQUENCE_JUMP;
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = firstContact(engine, 4, LIMITS, withStray(stray));

        // Plausible, so taken as the engine's: the hole before it is voided once asked about the attempt limit.
        assertThat(engine.requests).hasSize(1 + MAX_ATTEMPTS);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isEqualTo(stray);
        assertThat(stream.counters().get(Counter.UNKNOWN_HISTORY_BATCHES))
                .isEqualTo(EngineStream.MAX_SEQUENCE_JUMP - 1);
    }

    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void anAbsurdLiveJumpIsRefusedAndLosesNothing(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = stream(engine, LIMITS);
        stream.onConnected(now);
        answerAll(stream, engine, UnaryOperator.identity());
        for (int i = 0; i < 5; i++) {
            stream.onLive(i, engine.publish(), now);
        }
        stream.onLive(Long.MAX_VALUE, engine.publish(), now);
        answerAll(stream, engine, UnaryOperator.identity());
        stream.onLive(6, engine.publish(), now);
        answerAll(stream, engine, UnaryOperator.identity());

        assertThat(stream.counters().decodeErrors(Reason.IMPLAUSIBLE_SEQUENCE)).isEqualTo(1);
        assertThat(stream.lastHeardSequence()).isEqualTo(6);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isEqualTo(6);
        // Batch 5 (the one sent with the absurd sequence) is a real gap: one batch, replayed or voided.
        assertThat(stream.counters().get(Counter.UNKNOWN_HISTORY_BATCHES)).isLessThanOrEqualTo(1);
        assertThat(stream.incarnation()).isEqualTo(1);
    }

    @ParameterizedTest(name = "replay endpoint: {0}")
    @ValueSource(booleans = {true, false})
    void anAbsurdFirstSequenceIsRefusedAndCountsNoLoss(boolean replay) {
        FakeEngine engine = new FakeEngine(100, replay);
        EngineStream stream = stream(engine, LIMITS);
        stream.onLive(Long.MAX_VALUE - 1, engine.publish(), now);
        answerAll(stream, engine, UnaryOperator.identity());

        assertThat(stream.counters().decodeErrors(Reason.IMPLAUSIBLE_SEQUENCE)).isEqualTo(1);
        assertThat(stream.counters().get(Counter.UNKNOWN_HISTORY_BATCHES)).isZero();
        assertThat(stream.lastHeardSequence()).isEqualTo(-1);
        assertThat(stream.cursor()).isEqualTo(-1);
    }

    @Test
    void requestsComingDueTooSoonWaitForTheTick() {
        EngineStream.Limits bounded = new EngineStream.Limits(100, MAX_ATTEMPTS, 1000, 1000, 5_000, 50);
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = firstContact(engine, 6, bounded, without(3));
        // The hole's continuation is due at once but waits out the bound; replies meanwhile are stale.
        assertThat(engine.requests).hasSize(1);
        assertThat(stream.state()).isEqualTo(EngineState.CATCHING_UP);
        stream.onReplay(engine.replies(0).get(0), now);
        assertThat(stream.counters().get(Counter.STALE_REPLIES)).isEqualTo(1);
        now += 49;
        stream.onTick(now);
        assertThat(engine.requests).hasSize(1);

        int rounds = 0;
        while (stream.state() == EngineState.CATCHING_UP && rounds++ < STORM) {
            now += 50;
            stream.onTick(now);
            for (ReplayMessage reply : without(3).apply(engine.replies(engine.lastRequest()))) {
                stream.onReplay(reply, now);
            }
        }
        assertThat(engine.requests).hasSize(1 + MAX_ATTEMPTS);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isEqualTo(5);
        // No request timed out: each deadline counts from its sending, not from when it came due.
        assertThat(stream.counters().get(Counter.REPLAY_TIMEOUTS)).isZero();
    }
}
