package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.IngestSink.ResetReason;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** The sequence, replay and incarnation logic driven step by step, with an in-memory engine and a manual clock. */
class EngineStreamTest {
    private static final EngineStream.Limits LIMITS = new EngineStream.Limits(100, 3, 1000, 1000, 5_000);
    private static final byte[] EMPTY = new byte[0];

    /** An engine's publisher: a sequence, a bounded replay buffer, and replay requests that a test answers. */
    static final class FakeEngine implements EngineStream.ReplayRequester {
        final KvEventEncoder encoder = new KvEventEncoder();
        final List<byte[]> buffer = new ArrayList<>();
        final List<Long> requests = new ArrayList<>();
        /** For each request, whether it asked for a fresh connection. */
        final List<Boolean> fresh = new ArrayList<>();
        final int bufferSteps;
        final boolean replayable;
        long firstBuffered;
        long next;
        int restarts;

        FakeEngine(int bufferSteps, boolean replayable) {
            this.bufferSteps = bufferSteps;
            this.replayable = replayable;
        }

        /** Publishes the next batch; its timestamp encodes incarnation and sequence so tests can recognise it. */
        byte[] publish() {
            byte[] payload = encoder.encode(new KvEventBatch(restarts * 1e6 + next, 0, List.of(AllBlocksCleared.ALL),
                    0, 0), KvEventEncoder.Form.MAP);
            buffer.add(payload);
            if (buffer.size() > bufferSteps) {
                buffer.remove(0);
                firstBuffered++;
            }
            next++;
            return payload;
        }

        void restart() {
            restarts++;
            buffer.clear();
            firstBuffered = 0;
            next = 0;
        }

        /** The replies to a request from {@code from}, end marker included. */
        List<ReplayMessage> replies(long from) {
            List<ReplayMessage> replies = new ArrayList<>();
            for (long seq = Math.max(from, firstBuffered); seq < next; seq++) {
                replies.add(new ReplayMessage(EMPTY, seq, buffer.get((int) (seq - firstBuffered))));
            }
            replies.add(new ReplayMessage(EMPTY, WireFrames.END_OF_REPLAY, EMPTY));
            return replies;
        }

        long lastRequest() {
            return requests.get(requests.size() - 1);
        }

        @Override
        public boolean canReplay() {
            return replayable;
        }

        @Override
        public void requestReplay(long fromSequence, boolean freshConnection) {
            requests.add(fromSequence);
            fresh.add(freshConnection);
        }
    }

    private final RecordingSink sink = new RecordingSink();
    private long now = 1_000;

    private EngineStream stream(FakeEngine engine) {
        return new EngineStream(0, "test/0", sink, new KvEventDecoder(), engine, LIMITS, now);
    }

    /** A stream past its (empty) first-contact replay that then applied {@code liveBatches} live ones. */
    private EngineStream liveAfter(FakeEngine engine, int liveBatches) {
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        for (int i = 0; i < liveBatches; i++) {
            live(stream, engine);
        }
        return stream;
    }

    private void answer(EngineStream stream, FakeEngine engine) {
        for (ReplayMessage reply : engine.replies(engine.lastRequest())) {
            stream.onReplay(reply, now);
        }
    }

    private void live(EngineStream stream, FakeEngine engine) {
        byte[] payload = engine.publish();
        stream.onLive(engine.next - 1, payload, now);
    }

    @Test
    void firstContactReplaysFromZeroThenGoesLive() {
        FakeEngine engine = new FakeEngine(100, true);
        for (int i = 0; i < 5; i++) {
            engine.publish();
        }
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        assertThat(engine.requests).containsExactly(0L);
        assertThat(stream.state()).isEqualTo(EngineState.CATCHING_UP);
        live(stream, engine);
        answer(stream, engine);
        live(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L, 2L, 3L, 4L, 5L, 6L);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.counters().get(Counter.DUPLICATES)).isOne();
    }

    @Test
    void firstContactAfterTheBufferMovedOnReportsUnknownHistory() {
        FakeEngine engine = new FakeEngine(3, true);
        for (int i = 0; i < 10; i++) {
            engine.publish();
        }
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        assertThat(sink.all(0)).startsWith("unknown 0..6");
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(7L, 8L, 9L);
        assertThat(stream.counters().get(Counter.VOIDS)).isZero();
    }

    @Test
    void gapIsReplayedBeforeTheLiveBatchThatRevealedIt() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        live(stream, engine);
        engine.publish();
        engine.publish();
        live(stream, engine);
        // A continuation starts at the cursor (0) so the engine's batch there can be checked.
        assertThat(engine.lastRequest()).isZero();
        live(stream, engine);
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).as(sink.all(0).toString()).containsExactly(0L, 1L, 2L, 3L, 4L);
        assertThat(stream.counters().get(Counter.GAPS)).isOne();
        // The engine answered after publishing 3 and 4, so the replay carried them and the live copies are dropped.
        assertThat(stream.counters().get(Counter.REPLAYED_BATCHES)).isEqualTo(4);
        assertThat(stream.counters().get(Counter.DUPLICATES)).isEqualTo(3);
    }

    @Test
    void replayCutShortIsAskedAgainFromWhereItStopped() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        live(stream, engine);
        for (int i = 0; i < 6; i++) {
            engine.publish();
        }
        live(stream, engine);
        // The ROUTER delivers two replies, then drops the rest and the end marker at its high-water mark.
        List<ReplayMessage> replies = engine.replies(engine.lastRequest());
        stream.onReplay(replies.get(0), now);
        stream.onReplay(replies.get(1), now);
        now += 150;
        stream.onTick(now);
        // Verified 0, applied 1, then cut: asked again from the new cursor.
        assertThat(engine.requests).containsExactly(0L, 0L, 1L);
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 8).boxed().toList());
        assertThat(stream.counters().get(Counter.REPLAY_TIMEOUTS)).isOne();
    }

    @Test
    void firstContactReplayCutWithNothingQueuedIsContinuedFromTheNewCursor() {
        FakeEngine engine = new FakeEngine(100, true);
        for (int i = 0; i < 10; i++) {
            engine.publish();
        }
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        // The ROUTER delivers four replies, then drops the rest and the end marker; the engine publishes nothing more.
        engine.replies(0).subList(0, 4).forEach(reply -> stream.onReplay(reply, now));
        now += 150;
        stream.onTick(now);
        assertThat(engine.requests).as("continued from the cursor (3), which is checked").containsExactly(0L, 3L);
        assertThat(engine.fresh).containsExactly(false, true);
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 10).boxed().toList());
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        // A reply stream that ended with its end marker is complete: time passing asks nothing more.
        for (int i = 0; i < 5; i++) {
            now += 150;
            stream.onTick(now);
        }
        assertThat(engine.requests).hasSize(2);
        assertThat(stream.counters().get(Counter.REPLAY_TIMEOUTS)).isOne();
        assertThat(sink.all(0)).noneMatch(event -> event instanceof String || event instanceof ResetReason);
    }

    @Test
    void reconnectReplayCutWithNothingQueuedIsContinuedFromTheNewCursor() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = liveAfter(engine, 2);
        // Away while the engine published eight more, then idle: only the reconnect's replay can bring them.
        for (int i = 0; i < 8; i++) {
            engine.publish();
        }
        stream.onConnected(now);
        assertThat(engine.lastRequest()).isOne();
        engine.replies(1).subList(0, 3).forEach(reply -> stream.onReplay(reply, now));
        now += 150;
        stream.onTick(now);
        assertThat(engine.requests).containsExactly(0L, 1L, 3L);
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 10).boxed().toList());
        assertThat(stream.incarnation()).isOne();
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void firstContactReplayCutWithBatchesQueuedIsAskedAgainFromWhereItStopped() {
        FakeEngine engine = new FakeEngine(100, true);
        for (int i = 0; i < 10; i++) {
            engine.publish();
        }
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        live(stream, engine);
        live(stream, engine);
        engine.replies(0).subList(0, 4).forEach(reply -> stream.onReplay(reply, now));
        now += 150;
        stream.onTick(now);
        assertThat(engine.requests).containsExactly(0L, 3L);
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 12).boxed().toList());
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void aCutReplayThatBringsNothingNewIsGivenUpAfterTheAttempts() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = liveAfter(engine, 2);
        engine.publish();
        stream.onConnected(now);
        // Every answer stops after the checked batch at the cursor: nothing new, three times, then given up.
        for (int i = 0; i < 5; i++) {
            stream.onReplay(engine.replies(engine.lastRequest()).get(0), now);
            now += 150;
            stream.onTick(now);
        }
        assertThat(engine.requests).containsExactly(0L, 1L, 1L, 1L);
        assertThat(stream.counters().get(Counter.REPLAY_TIMEOUTS)).isEqualTo(3);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(stream.cursor()).isOne();
    }

    /**
     * Connects, applies a batch, loses one (a gap, so a replay is asked), then sends {@code behind} live batches while
     * the replay's answer, read from the engine's buffer when asked, has not arrived: returns that late answer.
     */
    private List<ReplayMessage> liveBatchesBehindALateReplay(EngineStream stream, FakeEngine engine, int behind) {
        stream.onConnected(now);
        answer(stream, engine);
        live(stream, engine);
        engine.publish();
        live(stream, engine);
        List<ReplayMessage> late = engine.replies(engine.lastRequest());
        for (int i = 0; i < behind; i++) {
            live(stream, engine);
        }
        return late;
    }

    /**
     * The pending queue is bounded in bytes too: at ingest.maxMessageBytes per frame, 10,000 waiting batches could
     * hold gigabytes (a daemon at -Xmx128m ran out of heap in ZmqFloodProcessTest with the batch bound alone). Past the
     * byte bound live batches are dropped and asked for again once the queue drains, as past the batch bound.
     */
    @Test
    void liveBatchesPastThePendingByteBoundAreDroppedAndAskedForAgain() {
        FakeEngine engine = new FakeEngine(100, true);
        long batchBytes = engine.encoder.encode(new KvEventBatch(0, 0, List.of(AllBlocksCleared.ALL), 0, 0),
                KvEventEncoder.Form.MAP).length;
        EngineStream stream = new EngineStream(0, "test/0", sink, new KvEventDecoder(), engine,
                new EngineStream.Limits(100, 3, 1000, 1_000, 5_000, 0, 5 * batchBytes), now);
        List<ReplayMessage> late = liveBatchesBehindALateReplay(stream, engine, 20);
        assertThat(stream.counters().get(Counter.PENDING_OVERFLOWS)).as("past 5 batches' bytes, far below 1,000")
                .isEqualTo(16);
        late.forEach(reply -> stream.onReplay(reply, now));
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 23).boxed().toList());
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void liveBatchesDroppedPastThePendingBoundAreAskedForOnceTheQueueDrains() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = new EngineStream(0, "test/0", sink, new KvEventDecoder(), engine,
                new EngineStream.Limits(100, 3, 1000, 16, 5_000), now);
        List<ReplayMessage> late = liveBatchesBehindALateReplay(stream, engine, 40);
        assertThat(stream.counters().get(Counter.PENDING_OVERFLOWS)).isEqualTo(25);
        late.forEach(reply -> stream.onReplay(reply, now));
        // The engine publishes nothing more (an idle vLLM): no later live batch would show the dropped ones as a gap.
        assertThat(stream.cursor()).isEqualTo(17);
        assertThat(engine.lastRequest()).as("a continuation from the cursor").isEqualTo(17);
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 43).boxed().toList());
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void lastHeardSequenceDoesNotGoBackWhenReplaysRunAheadOfALaggingLiveStream() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = liveAfter(engine, 1);
        engine.publish();
        live(stream, engine);
        // The live stream lags: the engine publishes 18 more that are still on the way when its replay answer comes.
        List<byte[]> onTheWay = new ArrayList<>();
        for (int i = 0; i < 18; i++) {
            onTheWay.add(engine.publish());
        }
        answer(stream, engine);
        assertThat(stream.cursor()).isEqualTo(20);
        assertThat(stream.lastHeardSequence()).isEqualTo(20);
        for (int i = 0; i < onTheWay.size(); i++) {
            stream.onLive(3 + i, onTheWay.get(i), now);
            assertThat(stream.lastHeardSequence()).as("after the late live batch %d", 3 + i).isEqualTo(20);
        }
        live(stream, engine);
        assertThat(stream.lastHeardSequence()).isEqualTo(21);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 22).boxed().toList());
    }

    @Test
    void lastHeardSequenceStartsAgainWithEachIncarnation() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = liveAfter(engine, 30);
        assertThat(stream.lastHeardSequence()).isEqualTo(29);
        // Restart by sequence: the new process's first live batch.
        engine.restart();
        live(stream, engine);
        assertThat(stream.incarnation()).isEqualTo(2);
        assertThat(stream.lastHeardSequence()).isZero();
        answer(stream, engine);
        for (int i = 0; i < 29; i++) {
            live(stream, engine);
        }
        assertThat(stream.lastHeardSequence()).isEqualTo(29);
        // Restart signalled by discovery; the new process published two batches.
        engine.restart();
        engine.publish();
        engine.publish();
        stream.onRestartSignalled(now);
        assertThat(stream.incarnation()).isEqualTo(3);
        assertThat(stream.lastHeardSequence()).isEqualTo(-1);
        answer(stream, engine);
        assertThat(stream.lastHeardSequence()).isOne();
        for (int i = 0; i < 28; i++) {
            live(stream, engine);
        }
        assertThat(stream.lastHeardSequence()).isEqualTo(29);
        // Restart found by the fingerprint on reconnect: the new process's buffer ends before our cursor.
        engine.restart();
        stream.onConnected(now);
        assertThat(engine.lastRequest()).isEqualTo(29);
        answer(stream, engine);
        assertThat(stream.incarnation()).isEqualTo(4);
        assertThat(stream.lastHeardSequence()).isEqualTo(-1);
        live(stream, engine);
        answer(stream, engine);
        assertThat(stream.lastHeardSequence()).isZero();
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L);
    }

    @Test
    void aVoidKeepsTheLastHeardSequence() {
        FakeEngine engine = new FakeEngine(4, true);
        EngineStream stream = liveAfter(engine, 1);
        for (int i = 0; i < 10; i++) {
            engine.publish();
        }
        live(stream, engine);
        answer(stream, engine);
        assertThat(stream.counters().get(Counter.VOIDS)).isOne();
        // The same process: its sequence goes on, and so does what was heard of it.
        assertThat(stream.incarnation()).isOne();
        assertThat(stream.lastHeardSequence()).isEqualTo(11);
    }

    @Test
    void sequenceGoingBackwardsIsANewIncarnation() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        for (int i = 0; i < 4; i++) {
            live(stream, engine);
        }
        engine.restart();
        live(stream, engine);
        assertThat(stream.incarnation()).isEqualTo(2);
        assertThat(engine.lastRequest()).isZero();
        live(stream, engine);
        answer(stream, engine);
        assertThat(sink.all(0)).contains(ResetReason.RESTART_BY_SEQUENCE);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L);
        assertThat(stream.counters().get(Counter.RESTARTS_BY_SEQUENCE)).isOne();
    }

    @Test
    void restartSignalledByDiscoveryStartsANewIncarnationAndReplaysTheNewProcessFromZero() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        for (int i = 0; i < 5; i++) {
            live(stream, engine);
        }
        // The container was replaced; the new process published two batches before discovery said so.
        engine.restart();
        engine.publish();
        engine.publish();
        stream.onRestartSignalled(now);
        assertThat(stream.incarnation()).isEqualTo(2);
        assertThat(engine.lastRequest()).isZero();
        answer(stream, engine);
        live(stream, engine);
        assertThat(sink.all(0)).contains(ResetReason.RESTART_SIGNALLED);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L, 2L);
        assertThat(stream.counters().get(Counter.RESTARTS_SIGNALLED)).isOne();
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    /**
     * A stream that applied {@code liveBatches} live; then, while it is disconnected, the engine restarts and
     * publishes {@code afterRestart} batches; then the stream reconnects.
     */
    private EngineStream reconnectAfterAnUnseenRestart(FakeEngine engine, int liveBatches, int afterRestart) {
        EngineStream stream = liveAfter(engine, liveBatches);
        engine.restart();
        for (int i = 0; i < afterRestart; i++) {
            engine.publish();
        }
        stream.onConnected(now);
        return stream;
    }

    @Test
    void restartThatPassedTheCursorIsFoundByTheFingerprintOnReconnect() {
        FakeEngine engine = new FakeEngine(100, true);
        // The new process published past our cursor (2) before we reconnected.
        EngineStream stream = reconnectAfterAnUnseenRestart(engine, 3, 6);
        assertThat(engine.lastRequest()).isEqualTo(2);
        answer(stream, engine);
        assertThat(stream.incarnation()).isEqualTo(2);
        assertThat(engine.lastRequest()).isZero();
        answer(stream, engine);
        live(stream, engine);
        assertThat(sink.all(0)).contains(ResetReason.RESTART_BY_FINGERPRINT);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactlyElementsOf(LongStream.range(0, 7).boxed().toList());
        List<Object> applied = sink.all(0);
        RecordingSink.Applied last = (RecordingSink.Applied) applied.get(applied.size() - 1);
        assertThat(last.timestamp()).isEqualTo(1e6 + 6);
    }

    @Test
    void restartFoundByAnEmptyBufferAtTheCursorReplaysTheNewProcessFromZero() {
        FakeEngine engine = new FakeEngine(100, true);
        // The new process published three batches, fewer than our cursor (9), then went idle.
        EngineStream stream = reconnectAfterAnUnseenRestart(engine, 10, 3);
        assertThat(engine.lastRequest()).isEqualTo(9);
        answer(stream, engine);
        assertThat(stream.incarnation()).isEqualTo(2);
        assertThat(engine.lastRequest()).as("the new process's history, asked at once").isZero();
        answer(stream, engine);
        assertThat(sink.all(0)).contains(ResetReason.RESTART_BY_FINGERPRINT);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L, 2L);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void reconnectToTheSameIncarnationContinuesWithWhatWasMissed() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        live(stream, engine);
        live(stream, engine);
        engine.publish();
        engine.publish();
        stream.onConnected(now);
        assertThat(engine.lastRequest()).isOne();
        answer(stream, engine);
        assertThat(stream.incarnation()).isOne();
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L, 2L, 3L);
    }

    @Test
    void gapOlderThanTheReplayBufferVoidsTheEngine() {
        FakeEngine engine = new FakeEngine(4, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        live(stream, engine);
        for (int i = 0; i < 10; i++) {
            engine.publish();
        }
        live(stream, engine);
        answer(stream, engine);
        assertThat(sink.all(0)).contains(ResetReason.VOID, "unknown 1..7");
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(8L, 9L, 10L, 11L);
        assertThat(stream.counters().get(Counter.VOIDS)).isOne();
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void restartFoundAtAGapWhenTheNewProcessPassedTheCursor() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        answer(stream, engine);
        live(stream, engine);
        live(stream, engine);
        // No reconnect is seen (as in listen mode): the new process's first live batch is past the cursor.
        engine.restart();
        for (int i = 0; i < 4; i++) {
            engine.publish();
        }
        live(stream, engine);
        assertThat(engine.lastRequest()).isOne();
        answer(stream, engine);
        assertThat(stream.incarnation()).isEqualTo(2);
        answer(stream, engine);
        assertThat(sink.all(0)).contains(ResetReason.RESTART_BY_FINGERPRINT);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L, 2L, 3L, 4L);
        assertThat(stream.counters().get(Counter.VOIDS)).isZero();
    }

    @Test
    void withoutAReplayEndpointAGapVoidsAtOnce() {
        FakeEngine engine = new FakeEngine(4, false);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        assertThat(engine.requests).isEmpty();
        engine.publish();
        live(stream, engine);
        engine.publish();
        live(stream, engine);
        assertThat(sink.all(0)).containsExactly("unknown 0..0", new RecordingSink.Applied(1, 1, 1),
                ResetReason.VOID, "unknown 2..2", new RecordingSink.Applied(1, 3, 3));
    }

    @Test
    void replaySocketThatNeverAnswersIsRetriedThenGivenUp() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onConnected(now);
        live(stream, engine);
        live(stream, engine);
        for (int i = 0; i < 3; i++) {
            now += 150;
            stream.onTick(now);
        }
        assertThat(engine.requests).containsExactly(0L, 0L, 0L);
        // A retry after a request that never ended goes out on a fresh connection: late replies cannot mix in.
        assertThat(engine.fresh).containsExactly(false, true, true);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void aReplaySocketStillReconnectingIsWaitedForNotGivenUpOn() {
        FakeEngine engine = new FakeEngine(100, true);
        for (int i = 0; i < 5; i++) {
            engine.publish();
        }
        EngineStream stream = stream(engine);
        stream.onReplayDisconnected(now);
        stream.onConnected(now);
        live(stream, engine);
        // Far longer than the attempts allow, but the replay socket is not connected: no try is spent.
        for (int i = 0; i < 10; i++) {
            now += 150;
            stream.onTick(now);
        }
        assertThat(engine.requests).containsExactly(0L);
        assertThat(stream.state()).isEqualTo(EngineState.CATCHING_UP);
        // The request was queued on the reconnecting socket and goes out now: it is not sent twice.
        stream.onReplayConnected(now);
        assertThat(engine.requests).containsExactly(0L);
        answer(stream, engine);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L, 2L, 3L, 4L, 5L);
        assertThat(sink.all(0)).noneMatch(event -> event instanceof String);
    }

    @Test
    void aReplaySocketThatNeverConnectsIsGivenUpOnAfterTheConnectWait() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = stream(engine);
        stream.onReplayDisconnected(now);
        stream.onConnected(now);
        live(stream, engine);
        live(stream, engine);
        // The connect wait (5 s here) passes, then the usual three tries, then the waiting batches are applied without
        // replay; with nothing heard since, the engine then reads as silent, no longer catching up.
        for (int i = 0; i < 40; i++) {
            now += 150;
            stream.onTick(now);
        }
        assertThat(stream.state()).isEqualTo(EngineState.SILENT);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L);
    }

    @Test
    void malformedBatchIsCountedAndItsSequenceConsumed() {
        FakeEngine engine = new FakeEngine(100, false);
        EngineStream stream = stream(engine);
        stream.onLive(0, new byte[] {(byte) 0x93, 0x01}, now);
        engine.next = 1;
        live(stream, engine);
        assertThat(stream.counters().get(Counter.DECODE_ERRORS)).isOne();
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(1L);
    }

    @Test
    void silenceIsAStateNotAnEmptyCache() {
        FakeEngine engine = new FakeEngine(100, false);
        EngineStream stream = stream(engine);
        live(stream, engine);
        now += 999;
        stream.onTick(now);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        now += 1;
        stream.onTick(now);
        assertThat(stream.state()).isEqualTo(EngineState.SILENT);
        live(stream, engine);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }

    @Test
    void batchesLostJustBeforeAnEngineFallsSilentAreFoundByTheSilenceProbe() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = liveAfter(engine, 5);
        // The engine's last two batches are lost on the way, and then it publishes nothing: no gap shows.
        engine.publish();
        engine.publish();
        int asked = engine.requests.size();
        now += 1_000;
        stream.onTick(now);
        assertThat(stream.state()).isEqualTo(EngineState.SILENT);
        assertThat(engine.requests).hasSize(asked + 1);
        assertThat(engine.lastRequest()).as("from the cursor, to check its batch first").isEqualTo(4);
        answer(stream, engine);
        assertThat(stream.cursor()).isEqualTo(6);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        assertThat(sink.sequencesSinceLastReset(0)).containsExactly(0L, 1L, 2L, 3L, 4L, 5L, 6L);
        assertThat(stream.counters().get(Counter.REPLAYED_BATCHES)).isEqualTo(2);
    }

    @Test
    void anIdleEngineIsProbedOncePerSilenceAndStaysSilent() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = liveAfter(engine, 5);
        int asked = engine.requests.size();
        now += 1_000;
        stream.onTick(now);
        answer(stream, engine);
        assertThat(stream.state()).as("the probe's replies are not the engine speaking").isEqualTo(EngineState.SILENT);
        assertThat(stream.cursor()).isEqualTo(4);
        assertThat(stream.counters().get(Counter.DUPLICATES)).as("the checked batch is no duplicate").isZero();
        now += 5_000;
        stream.onTick(now);
        assertThat(engine.requests).as("one probe per silence").hasSize(asked + 1);
        live(stream, engine);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
        now += 1_000;
        stream.onTick(now);
        assertThat(engine.requests).as("the next silence is probed again").hasSize(asked + 2);
        assertThat(engine.lastRequest()).isEqualTo(5);
    }

    @Test
    void theSilenceProbeFindsAnIdleEngineRestarted() {
        FakeEngine engine = new FakeEngine(100, true);
        EngineStream stream = liveAfter(engine, 5);
        // A new process that published two batches the broker never saw, and then nothing.
        engine.restart();
        engine.publish();
        engine.publish();
        now += 1_000;
        stream.onTick(now);
        assertThat(engine.lastRequest()).isEqualTo(4);
        answer(stream, engine);
        assertThat(engine.lastRequest()).as("the new process asked from 0").isZero();
        answer(stream, engine);
        assertThat(stream.incarnation()).isEqualTo(2);
        assertThat(stream.cursor()).isEqualTo(1);
        assertThat(stream.state()).isEqualTo(EngineState.LIVE);
    }
}
