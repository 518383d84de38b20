package io.kvbroker.ingest;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.core.Xxh64;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.IngestSink.ResetReason;
import io.kvbroker.ingest.ReplayAttempt.Purpose;
import java.util.ArrayDeque;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns one engine's live and replayed messages into its exact history: every batch of the current incarnation
 * applied once, in sequence order, with gaps replayed, restarts detected and unrecoverable gaps voided.
 *
 * <p>Design note: this class holds the logic only; sockets live in {@link ZmqIngest}, which calls it on the ingest
 * thread and sends the replay requests it asks for. While a replay is in progress, live batches wait in a bounded
 * queue and are applied after the replayed ones, so a batch is never applied before the gap it revealed is filled.
 * Only one replay request is outstanding at a time: a follow-up request (a reply stream cut short by the engine's
 * high-water mark, or a restart found while verifying) is sent when the current stream ends or times out, and a
 * request after one that never saw its end marker goes out on a fresh connection, so replies of two requests never
 * interleave.
 */
public final class EngineStream {
    private static final Logger LOG = LoggerFactory.getLogger(EngineStream.class);
    private static final long NONE = -1;
    private static final long LOG_INTERVAL_MS = 60_000;
    /**
     * The furthest a batch's sequence may run ahead of the highest one heard (or of 0, before any) and still be taken
     * as real. An engine counts by one per batch; at a thousand batches a second it takes 50 days to move 2^32, so a
     * jump past this is a stray or corrupt sequence (2^63 - 1 has been seen), not a loss: taken at face value it would
     * void the engine, count ~9e18 lost batches (past a double's exact range, which breaks {@code rate()}) and leave
     * every later batch below the cursor. It is refused as malformed ({@code IMPLAUSIBLE_SEQUENCE}) and not heard.
     */
    static final long MAX_SEQUENCE_JUMP = 1L << 32;

    /** Sends a replay request for this engine on its DEALER socket. */
    public interface ReplayRequester {
        /** Whether the engine has a replay endpoint at all. */
        boolean canReplay();

        /**
         * Asks for every buffered batch from {@code fromSequence} on.
         *
         * @param fresh the previous request may still be answered (it ended without its end marker): ask on a new
         *     connection, so its late replies cannot be taken for this request's
         */
        void requestReplay(long fromSequence, boolean fresh);
    }

    /** What a removed stream asks instead of its sockets: nothing. */
    private static final ReplayRequester NO_REPLAY = new ReplayRequester() {
        @Override
        public boolean canReplay() {
            return false;
        }

        @Override
        public void requestReplay(long fromSequence, boolean fresh) {
            // Removed: nothing more is asked.
        }
    };

    /**
     * Timings and bounds, from the {@code ingest.*} settings. {@code replayMinIntervalMs} is the least time between
     * two replay requests of one engine: a request due sooner waits for the ingest loop's tick.
     */
    public record Limits(long replayTimeoutMs, int replayMaxAttempts, long silentAfterMs, int maxPendingBatches,
            long replayConnectWaitMs, long replayMinIntervalMs, long maxPendingBytes) {

        /** Without a bound on the request rate: for tests that drive the clock by hand and do not advance it. */
        public Limits(long replayTimeoutMs, int replayMaxAttempts, long silentAfterMs, int maxPendingBatches,
                long replayConnectWaitMs) {
            this(replayTimeoutMs, replayMaxAttempts, silentAfterMs, maxPendingBatches, replayConnectWaitMs, 0);
        }

        /** With {@code ingest.maxPendingBytes}' default. */
        public Limits(long replayTimeoutMs, int replayMaxAttempts, long silentAfterMs, int maxPendingBatches,
                long replayConnectWaitMs, long replayMinIntervalMs) {
            this(replayTimeoutMs, replayMaxAttempts, silentAfterMs, maxPendingBatches, replayConnectWaitMs,
                    replayMinIntervalMs, DEFAULT_MAX_PENDING_BYTES);
        }
    }

    /** As {@code ingest.maxPendingBytes}' default. */
    static final long DEFAULT_MAX_PENDING_BYTES = 33_554_432;

    /** A live batch waiting for a replay; {@code backwards} if its sequence was below the live one before it. */
    private record Pending(long sequence, byte[] payload, boolean backwards) {
    }

    private final int engineId;
    private final String name;
    private final IngestSink sink;
    private final KvEventDecoder decoder;
    /** The engine's replay socket; let go of on removal, so a removed stream kept for its counters holds no socket. */
    private ReplayRequester replay;
    private final Limits limits;
    private final EngineCounters counters = new EngineCounters();
    private final GroupKinds kinds = new GroupKinds();
    private final ArrayDeque<Pending> pending = new ArrayDeque<>();
    /** The payload bytes {@link #pending} holds. */
    private long pendingBytes;

    // Volatile: status and metrics read it from other threads; it changes rarely, so writes check first.
    private volatile EngineState state = EngineState.CONNECTING;
    private long incarnation = 1;
    private long cursor = NONE;
    /** XXH64 of the last applied payload: what a continuation replay's first reply is checked against. */
    private long lastFingerprint;
    private boolean fingerprintKnown;
    // Volatile: ListEngines reads them from query threads to report lag.
    private volatile long lastHeardMs;
    /**
     * The highest sequence heard in the current incarnation. Not simply the latest: replies can run ahead of live
     * batches still on their way, and the lag reported (this minus the applied sequence) must not read 0 meanwhile.
     */
    private volatile long lastHeardSequence = NONE;
    /**
     * Whether the replay socket is connected, as far as anyone told us (true until a transport says otherwise).
     * Silence from a socket that is not connected is no evidence that history is lost: it does not count as a try.
     */
    private boolean replayConnected = true;
    /** When the replay socket was last seen going down. */
    private long replayDownSinceMs;
    /** Whether this incarnation's first-contact replay (from 0) has been asked and has ended. */
    private boolean firstContactDone;
    /** The sequence of the previous live message on the current connection, in arrival order. */
    private long lastLiveSequence = NONE;
    private long lastErrorLogMs = -LOG_INTERVAL_MS;
    private long lastTopicLogMs = -LOG_INTERVAL_MS;
    /**
     * Whether the index may hold less of this incarnation than the engine does: some of its batches were published
     * where the broker could not hear them and no replay had them (before first contact, across a reconnect without
     * a replay endpoint, or a void). Volatile: ListEngines reads it so a router can tell a short history apart.
     */
    private volatile boolean historyPartial;
    /** The topic the engine's messages carry when it is not the configured one (null while they match). */
    private volatile String mismatchedTopic;
    /** Whether the SUB's monitor last reported a greeted connection to the engine's PUB (connect mode). */
    private boolean liveConnected;

    /** The replay in progress, if any: its fields; the decisions are this class's. */
    private final ReplayAttempt attempt;

    public EngineStream(int engineId, String name, IngestSink sink, KvEventDecoder decoder, ReplayRequester replay,
            Limits limits, long nowMs) {
        this.engineId = engineId;
        this.name = name;
        this.sink = sink;
        this.decoder = decoder;
        this.replay = replay;
        this.limits = limits;
        this.attempt = new ReplayAttempt(limits);
        this.lastHeardMs = nowMs;
    }

    public int engineId() {
        return engineId;
    }

    public EngineState state() {
        return state;
    }

    public long incarnation() {
        return incarnation;
    }

    /** The last applied sequence, or -1 before the first. */
    public long cursor() {
        return cursor;
    }

    /**
     * Where a restarted kvbroker left this engine: its incarnation, last applied sequence, that batch's payload
     * fingerprint and the engine's group kinds.
     */
    public record Resume(long incarnation, long sequence, long fingerprint, byte[] kinds) {
    }

    /**
     * Continues from a persisted position instead of first contact: the next connection asks the engine to replay
     * from the cursor and checks the first reply against the fingerprint, so a restart of the engine while kvbroker
     * was down is found as one during a disconnect would be. Before the stream sees any message.
     */
    public void resume(Resume resume) {
        incarnation = resume.incarnation();
        if (resume.sequence() >= 0) {
            cursor = resume.sequence();
            lastFingerprint = resume.fingerprint();
            fingerprintKnown = true;
            firstContactDone = true;
        }
        kinds.restore(resume.kinds());
    }

    public EngineCounters counters() {
        return counters;
    }

    /** When anything was last heard from the engine (live or replay), on the ingest clock. */
    public long lastHeardMs() {
        return lastHeardMs;
    }

    /**
     * The highest sequence heard from the engine's current incarnation, live or replayed (-1 before the first): what
     * it has published, as far as we know.
     */
    public long lastHeardSequence() {
        return lastHeardSequence;
    }

    /** Whether the index may hold less of the current incarnation than the engine does (see {@code historyPartial}). */
    public boolean historyPartial() {
        return historyPartial;
    }

    /** The topic the engine's messages carry when it differs from the configured one, or null. */
    public String mismatchedTopic() {
        return mismatchedTopic;
    }

    /** The SUB socket (re)connected to the engine's PUB. */
    public void onConnected(long nowMs) {
        counters.increment(Counter.CONNECTIONS);
        // A new connection starts a new live stream: a restart across the reconnect is found by verifying, with a
        // replay endpoint, or by the first live batch's sequence without one (acceptLive).
        lastLiveSequence = NONE;
        if (!replay.canReplay()) {
            return;
        }
        if (cursor == NONE) {
            if (!(attempt.active() && attempt.purpose() == Purpose.FIRST_CONTACT)) {
                // First contact: the engine's cache holds what it published before kvbroker was there.
                startOrFollow(Purpose.FIRST_CONTACT, nowMs);
            }
        } else {
            // The engine may have restarted and passed our cursor while we were away: check the batch at the cursor.
            startOrFollow(Purpose.CONTINUE, nowMs);
        }
    }

    /**
     * The SUB's connection finished ZeroMQ's greeting: the engine's PUB is there. Until it publishes, the engine is
     * CONNECTED, not CONNECTING (which reads as unreachable). The TCP connection alone says less: an endpoint that
     * accepts TCP and never speaks ZeroMQ (a wrong port) is not an engine.
     */
    public void onGreeted() {
        liveConnected = true;
        if (state == EngineState.CONNECTING) {
            state = EngineState.CONNECTED;
        }
    }

    /** The SUB socket lost its connection to the engine's PUB. */
    public void onDisconnected(long nowMs) {
        liveConnected = false;
        if (state == EngineState.CONNECTED) {
            state = EngineState.CONNECTING;
        }
    }

    /**
     * A live message whose topic is not the engine's configured one: not applied (it is another engine's stream, or
     * the configuration names the wrong topic), counted, and logged once a minute with the topic seen.
     */
    public void onTopicMismatch(String topic, String expected) {
        counters.increment(Counter.TOPIC_MISMATCHES);
        mismatchedTopic = topic;
        long now = System.currentTimeMillis();
        if (now - lastTopicLogMs >= LOG_INTERVAL_MS) {
            lastTopicLogMs = now;
            LOG.warn("engine {} publishes topic '{}', not the configured '{}': its messages are dropped ({} so far)."
                    + " Fix the engine's topic in the configuration (or the engine's --kv-events-config).", name,
                    topic, expected, counters.get(Counter.TOPIC_MISMATCHES));
        }
    }

    /** A live message carried the configured topic (again). */
    public void onTopicMatched() {
        mismatchedTopic = null;
    }

    /** A live batch arrived on the SUB socket. */
    public void onLive(long sequence, byte[] payload, long nowMs) {
        if (implausible(sequence)) {
            return;
        }
        heard(nowMs);
        heardSequence(sequence);
        // Restarts are judged in arrival order: a batch that waited behind a replay may be below the cursor by then
        // without the engine having restarted.
        boolean backwards = lastLiveSequence != NONE && sequence <= lastLiveSequence;
        lastLiveSequence = sequence;
        if (attempt.active()) {
            // Bounded in bytes as well as in batches: at the largest frame a socket takes (ingest.maxMessageBytes), the
            // batch bound alone held gigabytes. The first batch always waits, so a large one is not refused for ever.
            if (pending.size() >= limits.maxPendingBatches()
                    || !pending.isEmpty() && pendingBytes + payload.length > limits.maxPendingBytes()) {
                // Dropped here; it is asked for again once the queue drains (finishReplay).
                counters.increment(Counter.PENDING_OVERFLOWS);
                checkUnapplied(payload);
                attempt.markOverflowed();
                return;
            }
            pending.add(new Pending(sequence, payload, backwards));
            pendingBytes += payload.length;
            return;
        }
        acceptLive(sequence, payload, backwards, nowMs);
    }

    private void acceptLive(long sequence, byte[] payload, boolean backwards, long nowMs) {
        if (cursor != NONE && sequence <= cursor && !backwards && replay.canReplay()) {
            // Already applied from a replay that covered it. Without a replay endpoint nothing but the live stream
            // applies batches, and PUB/SUB never delivers one twice: a sequence at or below the cursor is then a new
            // process (restart, below), even as the first batch of a new connection.
            counters.increment(Counter.DUPLICATES);
            checkUnapplied(payload);
        } else if (cursor == NONE && !firstContactDone && replay.canReplay()) {
            // Data can arrive before the connection event is read (or, listening, there is none): first contact.
            pending.addFirst(new Pending(sequence, payload, false));
            pendingBytes += payload.length;
            startReplay(Purpose.FIRST_CONTACT, nowMs);
        } else if (cursor == NONE) {
            if (sequence > 0) {
                // Published where the broker could not hear it (before it was there, or while it reconnected) and
                // nothing can replay it: a gap of unknown content, counted as one.
                counters.increment(Counter.GAPS);
                unknownHistory(0, sequence - 1);
            }
            apply(sequence, payload);
        } else if (sequence == cursor + 1) {
            apply(sequence, payload);
        } else if (sequence <= cursor) {
            counters.increment(Counter.RESTARTS_BY_SEQUENCE);
            restart(ResetReason.RESTART_BY_SEQUENCE);
            heardSequence(sequence);
            if (replay.canReplay()) {
                pending.addFirst(new Pending(sequence, payload, false));
                pendingBytes += payload.length;
                startReplay(Purpose.FIRST_CONTACT, nowMs);
            } else {
                acceptLive(sequence, payload, false, nowMs);
            }
        } else {
            counters.increment(Counter.GAPS);
            if (replay.canReplay()) {
                pending.addFirst(new Pending(sequence, payload, false));
                pendingBytes += payload.length;
                startReplay(Purpose.CONTINUE, nowMs);
            } else {
                voidState(cursor + 1, sequence - 1);
                apply(sequence, payload);
            }
        }
    }

    /** A reply arrived on the replay DEALER socket. */
    public void onReplay(ReplayMessage message, long nowMs) {
        if (!attempt.awaitingReplies()) {
            counters.increment(Counter.STALE_REPLIES);
            if (!message.isEnd()) {
                checkUnapplied(message.payload());
            }
            return;
        }
        if (!attempt.probing()) {
            heard(nowMs);
        }
        attempt.extendDeadline(nowMs);
        if (message.isEnd()) {
            attempt.endMarker();
            endOfReplyStream(nowMs, false);
            return;
        }
        if (attempt.discarding()) {
            // This stream is being discarded; the follow-up request goes out when it ends.
            checkUnapplied(message.payload());
            return;
        }
        long sequence = message.sequence();
        byte[] payload = message.payload();
        if (implausible(sequence)) {
            // A stray in the reply: skipped like a malformed reply, so it opens no hole to be asked about again.
            return;
        }
        heardSequence(sequence);
        if (attempt.takeFirstReply()) {
            if (attempt.verifyFirst() && sequence == cursor) {
                if (Xxh64.hash(payload) == lastFingerprint) {
                    if (!attempt.probing()) {
                        counters.increment(Counter.DUPLICATES);
                    }
                    checkUnapplied(payload);
                    return;
                }
                heardByProbe(nowMs);
                counters.increment(Counter.RESTARTS_BY_FINGERPRINT);
                restart(ResetReason.RESTART_BY_FINGERPRINT);
                // This reply is the new process's batch at that sequence.
                heardSequence(sequence);
                attempt.followUp(Purpose.FIRST_CONTACT);
                checkUnapplied(payload);
                return;
            }
            long firstMissing = attempt.verifyFirst() ? cursor + 1 : attempt.fromSequence();
            if (sequence > firstMissing) {
                // The engine's buffer no longer holds what we need: unknown before first contact, void after it.
                if (cursor == NONE) {
                    unknownHistory(firstMissing, sequence - 1);
                } else {
                    voidState(firstMissing, sequence - 1);
                }
                cursor = sequence - 1;
                fingerprintKnown = false;
            }
        }
        if (cursor != NONE && sequence <= cursor) {
            counters.increment(Counter.DUPLICATES);
            checkUnapplied(payload);
            return;
        }
        heardByProbe(nowMs);
        if (cursor != NONE && sequence > cursor + 1) {
            // A hole in the middle of a reply stream: the ROUTER dropped at its high-water mark and went on. Asked
            // again like any request that brings nothing; on the last try the hole is what the engine cannot give.
            if (!attempt.lastTry(cursor, incarnation)) {
                attempt.followUp(Purpose.CONTINUE);
                checkUnapplied(payload);
                return;
            }
            voidState(cursor + 1, sequence - 1);
            fingerprintKnown = false;
        }
        counters.increment(Counter.REPLAYED_BATCHES);
        apply(sequence, payload);
    }

    /** Time passes: replay read timeouts and silence. Called by the ingest loop every few milliseconds. */
    public void onTick(long nowMs) {
        if (attempt.deferred()) {
            if (attempt.mayRequest(nowMs)) {
                sendRequest(nowMs);
            }
        } else if (attempt.timedOut(nowMs)) {
            counters.increment(Counter.REPLAY_TIMEOUTS);
            endOfReplyStream(nowMs, true);
        }
        if (state == EngineState.LIVE && nowMs - lastHeardMs >= limits.silentAfterMs()) {
            state = EngineState.SILENT;
            LOG.info("engine {} is silent: nothing heard for {} ms", name, nowMs - lastHeardMs);
            if (replay.canReplay() && !attempt.active() && cursor != NONE) {
                // Batches lost just before an engine falls quiet leave no gap, as nothing follows them: ask once
                // whether its buffer holds more than the cursor (or another process).
                attempt.markProbing();
                startReplay(Purpose.CONTINUE, nowMs);
            }
        }
    }

    /** The replay socket lost its connection (the engine went away, or restarted). */
    public void onReplayDisconnected(long nowMs) {
        if (replayConnected) {
            replayConnected = false;
            replayDownSinceMs = nowMs;
        }
    }

    /**
     * The replay socket (re)connected. A request sent while it was down was queued on it and goes out now, so the
     * replay timeout starts over rather than sending it twice (two answers would interleave).
     */
    public void onReplayConnected(long nowMs) {
        replayConnected = true;
        if (attempt.awaitingReplies()) {
            attempt.extendDeadline(nowMs);
        }
    }

    /**
     * Discovery saw the engine's process replaced (a new container): its state is cleared, a new incarnation begins,
     * and its history is asked again from sequence 0.
     *
     * <p>Design note: the sequence and fingerprint checks may have found the same restart already; restarting again
     * only clears what the first-contact replay then applies once more from the new process's buffer. Batches of the
     * old process still queued (pending, or in a reply stream) are dropped: they belong to the incarnation that ended.
     */
    public void onRestartSignalled(long nowMs) {
        counters.increment(Counter.RESTARTS_SIGNALLED);
        // Cleared first: what restart() counts as heard of the new process must not include the old one's batches.
        clearPending();
        restart(ResetReason.RESTART_SIGNALLED);
        lastLiveSequence = NONE;
        if (attempt.awaitingReplies()) {
            // The reply stream in progress is the old process's: discard it and ask from 0 when it ends.
            attempt.followUp(Purpose.FIRST_CONTACT);
        } else if (replay.canReplay()) {
            startReplay(Purpose.FIRST_CONTACT, nowMs);
        }
    }

    /** A message from this engine whose frames could not be parsed: counted and skipped. */
    public void onMalformedFrames(MalformedMessageException e) {
        counters.decodeError(e.reason());
        logRateLimited("engine {} sent a malformed message near sequence {}: {}", cursor, e.getMessage());
    }

    /** The engine was removed: its state is cleared and nothing more is applied. */
    public void onRemoved() {
        state = EngineState.REMOVED;
        attempt.cancel();
        clearPending();
        replay = NO_REPLAY;
        sink.onReset(engineId, incarnation, ResetReason.REMOVED);
    }

    /**
     * The current reply stream ended: with its end marker, or by going quiet for the replay timeout (the ROUTER drops
     * silently at its high-water mark, end marker included). Decides whether to ask again, give up, or go live.
     */
    private void endOfReplyStream(long nowMs, boolean timedOut) {
        if (!attempt.discarding() && timedOut && attempt.awaitingFirstReply() && !replayConnected
                && nowMs - replayDownSinceMs < limits.replayConnectWaitMs()) {
            // Nothing came back because nothing is connected: wait (a while) for the socket to come back; the
            // request queued on it goes out then. An endpoint that never answers is given up on as before.
            attempt.extendDeadline(nowMs);
            return;
        }
        // Every request counts, follow-ups included: a hole the engine answers with every time must not be asked
        // about at round-trip speed for ever. A restart found is progress (a new history begins).
        boolean giveUp = attempt.countTry(cursor, incarnation);
        Purpose next = attempt.takeFollowUp();
        if (next != null) {
            if (next == Purpose.FIRST_CONTACT || !giveUp) {
                startReplay(next, nowMs);
                return;
            }
            // A continuation that brought nothing too often: given up on below, as any other.
        }
        if (timedOut && attempt.awaitingFirstReply() && !giveUp) {
            // Nothing at all came back: the replay socket may not be up yet. Ask the same again.
            startReplay(attempt.purpose(), nowMs);
            return;
        }
        if (attempt.verifyFirst() && attempt.awaitingFirstReply() && !timedOut) {
            // An empty buffer where our cursor's batch should be: a new process that has not reached our cursor. What
            // it did publish is asked for now, as after any restart: an idle engine would send no live batch to ask it.
            heardByProbe(nowMs);
            counters.increment(Counter.RESTARTS_BY_FINGERPRINT);
            restart(ResetReason.RESTART_BY_FINGERPRINT);
            startReplay(Purpose.FIRST_CONTACT, nowMs);
            return;
        }
        long needed = pending.isEmpty() ? NONE : pending.peekFirst().sequence() - 1;
        boolean stoppedShort = needed != NONE && cursor < needed;
        // With nothing queued, only the end marker says the engine's buffer was read to its end. A stream that went
        // quiet without it was cut, and an engine gone idle sends no live batch that would show what is missing.
        boolean cutWithNothingQueued = timedOut && pending.isEmpty();
        if ((stoppedShort || cutWithNothingQueued) && !giveUp) {
            startReplay(cursor == NONE ? Purpose.FIRST_CONTACT : Purpose.CONTINUE, nowMs);
            return;
        }
        if (stoppedShort) {
            // The engine cannot give us what we need: unknown before the first contact, void after it.
            if (cursor == NONE) {
                unknownHistory(0, needed);
            } else {
                voidState(cursor + 1, needed);
            }
            cursor = needed;
            fingerprintKnown = false;
        }
        finishReplay(nowMs);
    }

    private void finishReplay(long nowMs) {
        if (attempt.finish() == Purpose.FIRST_CONTACT) {
            firstContactDone = true;
        }
        if (state == EngineState.CATCHING_UP) {
            state = cursor != NONE ? EngineState.LIVE : liveConnected ? EngineState.CONNECTED
                    : EngineState.CONNECTING;
        }
        while (!attempt.active() && !pending.isEmpty()) {
            Pending next = pending.pollFirst();
            pendingBytes -= next.payload().length;
            acceptLive(next.sequence(), next.payload(), next.backwards(), nowMs);
        }
        if (!attempt.active() && attempt.overflowed()) {
            // The engine's buffer holds what was dropped: ask now, not when a later live batch shows the gap, which an
            // engine gone idle may never send. A continuation also finds a restart hidden among the dropped batches.
            startReplay(cursor == NONE ? Purpose.FIRST_CONTACT : Purpose.CONTINUE, nowMs);
        }
    }

    /**
     * A message dropped for its sequence, never applied (duplicate, stale reply, overflow, discarded): its payload is
     * still decoded once, so a malformed message is counted by reason whatever its sequence, exactly once. Costs a
     * decode only on these paths; an applied batch is decoded (and counted) once, in {@link #apply}.
     */
    private void checkUnapplied(byte[] payload) {
        try {
            decoder.decode(payload);
        } catch (MalformedMessageException e) {
            counters.decodeError(e.reason());
        }
    }

    private void clearPending() {
        for (Pending dropped : pending) {
            checkUnapplied(dropped.payload());
        }
        pending.clear();
        pendingBytes = 0;
    }

    private void startOrFollow(Purpose why, long nowMs) {
        if (attempt.awaitingReplies()) {
            attempt.followUp(why);
        } else {
            startReplay(why, nowMs);
        }
    }

    private void startReplay(Purpose why, long nowMs) {
        boolean verifyFirst = why == Purpose.CONTINUE && fingerprintKnown;
        long from = why == Purpose.FIRST_CONTACT ? 0 : verifyFirst ? cursor : cursor + 1;
        attempt.start(why, from, verifyFirst, cursor, incarnation);
        if (state != EngineState.VOID && !(attempt.probing() && state == EngineState.SILENT)) {
            state = EngineState.CATCHING_UP;
        }
        if (!attempt.mayRequest(nowMs)) {
            // Bounds the request rate whatever the engine answers; sent from onTick (a storm of 21,063 requests in
            // 9 s was seen before every path counted its tries).
            attempt.defer();
            return;
        }
        sendRequest(nowMs);
    }

    private void sendRequest(long nowMs) {
        // The engine answers from its buffer as it is when the request arrives: every batch dropped so far is in it.
        boolean fresh = attempt.sent(nowMs);
        counters.increment(Counter.REPLAYS_REQUESTED);
        replay.requestReplay(attempt.fromSequence(), fresh);
    }

    private void apply(long sequence, byte[] payload) {
        cursor = sequence;
        lastFingerprint = Xxh64.hash(payload);
        fingerprintKnown = true;
        if (state != EngineState.LIVE) {
            state = EngineState.LIVE;
        }
        counters.increment(Counter.BATCHES);
        counters.add(Counter.BYTES, payload.length);
        KvEventBatch batch;
        try {
            batch = decoder.decode(payload, 0, payload.length, kinds);
        } catch (MalformedMessageException e) {
            // The sequence is consumed either way: the engine would replay the same bytes.
            counters.decodeError(e.reason());
            logRateLimited("engine {} sent a malformed batch at sequence {}: {}", sequence, e.getMessage());
            return;
        }
        counters.add(Counter.BLOCK_EVENTS, batch.blockEventCount());
        counters.mark(EngineCounters.Mark.LAST_APPLIED_BATCH_TS_MS, (long) (batch.timestamp() * 1000));
        if (batch.skippedEvents() > 0) {
            counters.add(Counter.SKIPPED_EVENTS, batch.skippedEvents());
        }
        if (batch.skippedFields() > 0) {
            counters.add(Counter.SKIPPED_FIELDS, batch.skippedFields());
        }
        sink.onBatch(engineId, incarnation, sequence, batch, lastFingerprint, kinds);
    }

    private void restart(ResetReason reason) {
        incarnation++;
        historyPartial = false;
        cursor = NONE;
        firstContactDone = false;
        fingerprintKnown = false;
        kinds.clear();
        // What was heard of the old process says nothing of the new one; the live batches still queued are the new
        // one's (found restarted at or before the first of them). A void, by contrast, keeps the process and its count.
        long heard = NONE;
        for (Pending queued : pending) {
            heard = Math.max(heard, queued.sequence());
        }
        lastHeardSequence = heard;
        LOG.info("engine {} restarted ({}): incarnation {}", name, reason.name().toLowerCase(), incarnation);
        sink.onReset(engineId, incarnation, reason);
    }

    private void voidState(long fromSequence, long toSequence) {
        counters.increment(Counter.VOIDS);
        counters.add(Counter.UNKNOWN_HISTORY_BATCHES, toSequence - fromSequence + 1);
        state = EngineState.VOID;
        historyPartial = true;
        logRateLimited("engine {} lost batches {}{}: beyond its replay buffer, so its state is cleared and starts"
                + " again", fromSequence, ".." + toSequence + " (voids so far: " + counters.get(Counter.VOIDS) + ")");
        sink.onReset(engineId, incarnation, ResetReason.VOID);
        sink.onUnknownHistory(engineId, incarnation, fromSequence, toSequence);
    }

    private void unknownHistory(long fromSequence, long toSequence) {
        historyPartial = true;
        counters.add(Counter.UNKNOWN_HISTORY_BATCHES, toSequence - fromSequence + 1);
        sink.onUnknownHistory(engineId, incarnation, fromSequence, toSequence);
    }

    /**
     * Whether a batch's sequence is too far ahead to be real (see {@link #MAX_SEQUENCE_JUMP}): counted as malformed
     * and logged; the caller drops the batch without hearing it, so neither the lag nor the lost count moves.
     */
    private boolean implausible(long sequence) {
        long highest = Math.max(cursor, lastHeardSequence);
        // Written as a subtraction from the sequence (0 or more), which cannot overflow.
        if (sequence - MAX_SEQUENCE_JUMP <= highest) {
            return false;
        }
        counters.decodeError(MalformedMessageException.Reason.IMPLAUSIBLE_SEQUENCE);
        logRateLimited("engine {} sent sequence {}: too far past the highest heard to be real; dropped ({})", sequence,
                "highest " + highest);
        return true;
    }

    private void heardSequence(long sequence) {
        if (sequence > lastHeardSequence) {
            lastHeardSequence = sequence;
        }
    }

    private void heard(long nowMs) {
        if (nowMs != lastHeardMs) {
            counters.mark(EngineCounters.Mark.LAST_HEARD_MS, nowMs);
        }
        lastHeardMs = nowMs;
        if (state == EngineState.SILENT) {
            state = attempt.active() ? EngineState.CATCHING_UP : EngineState.LIVE;
        }
    }

    /** A reply of the silence probe brought something: the engine was heard after all. */
    private void heardByProbe(long nowMs) {
        if (attempt.probeAnswered()) {
            heard(nowMs);
        }
    }

    /** Warns at most once a minute per engine, so a flood of bad input or losses cannot flood the log. */
    private void logRateLimited(String format, long sequence, String detail) {
        long now = System.currentTimeMillis();
        if (now - lastErrorLogMs >= LOG_INTERVAL_MS) {
            lastErrorLogMs = now;
            LOG.warn(format, name, sequence, detail);
        }
    }
}
