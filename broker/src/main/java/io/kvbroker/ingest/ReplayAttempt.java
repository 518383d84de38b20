package io.kvbroker.ingest;

/**
 * The replay one engine has under way: what was asked, from where and why, when its request may go out and when its
 * reply stream counts as quiet, what is to be asked once it ends, and how many requests in a row brought nothing.
 *
 * <p>Design note: this class records and {@link EngineStream} decides: every method here sets or reads the
 * attempt's own fields, none looks at the cursor's meaning or sends anything. One instance serves a stream for its
 * whole life, as only one replay is outstanding per engine; the rate bound and the try count carry from one request
 * to the next.
 */
final class ReplayAttempt {
    /**
     * Why a replay was asked: from sequence 0 on first contact, or to continue from the cursor. A continuation asks
     * from the cursor itself when the last payload is known, and checks the first reply against it: that is how a
     * restart that passed the cursor unseen (a reconnect, or a gap in listen mode) is told from the same process.
     */
    enum Purpose { FIRST_CONTACT, CONTINUE }

    private final EngineStream.Limits limits;
    private boolean active;
    private Purpose purpose;
    private long fromSequence;
    private boolean verifyFirst;
    private boolean awaitingFirstReply;
    private long deadlineMs;
    private long cursorAtRequest;
    private long incarnationAtRequest;
    private int attemptsWithoutProgress;
    /**
     * Decided but its request not sent yet: it came due sooner than {@code replayMinIntervalMs} after the previous
     * one, and goes out from the stream's tick. Replies meanwhile belong to an earlier request and are stale.
     */
    private boolean deferred;
    /** The earliest time the next request may be sent. */
    private long nextRequestAllowedMs = Long.MIN_VALUE;
    /** What to ask once the current reply stream ends, or null for nothing. */
    private Purpose followUp;
    /**
     * The attempt is the one asked when the engine fell silent: its replies count as hearing from the engine only if
     * they bring something (a batch past the cursor, or a restart), so an idle engine stays SILENT.
     */
    private boolean probing;
    /** A request was sent and its end marker has not come back. */
    private boolean requestOpen;
    /** Live batches were dropped past the queue's bound since the last request: ask again once the queue drains. */
    private boolean overflowed;

    ReplayAttempt(EngineStream.Limits limits) {
        this.limits = limits;
    }

    /** Begins an attempt (its request is sent by {@link #sent} or deferred by {@link #defer}). */
    void start(Purpose why, long fromSequence, boolean verifyFirst, long cursor, long incarnation) {
        active = true;
        purpose = why;
        this.fromSequence = fromSequence;
        this.verifyFirst = verifyFirst;
        awaitingFirstReply = true;
        cursorAtRequest = cursor;
        incarnationAtRequest = incarnation;
    }

    /** Whether a replay is under way (asked, or decided and deferred). */
    boolean active() {
        return active;
    }

    /** Whether a replay is under way and its request has gone out: replies now belong to it. */
    boolean awaitingReplies() {
        return active && !deferred;
    }

    /** Whether a replay is under way whose request waits for the rate bound. */
    boolean deferred() {
        return active && deferred;
    }

    Purpose purpose() {
        return purpose;
    }

    long fromSequence() {
        return fromSequence;
    }

    /** Whether the first reply is to be checked against the last applied payload (a continuation from the cursor). */
    boolean verifyFirst() {
        return verifyFirst;
    }

    boolean awaitingFirstReply() {
        return awaitingFirstReply;
    }

    /** Whether this reply is the attempt's first; from then on, it is not. */
    boolean takeFirstReply() {
        boolean first = awaitingFirstReply;
        awaitingFirstReply = false;
        return first;
    }

    /** Whether the rate bound lets a request go out now. */
    boolean mayRequest(long nowMs) {
        return nowMs >= nextRequestAllowedMs;
    }

    void defer() {
        deferred = true;
    }

    /**
     * The request goes out now: the rate bound and the reply timeout start, and dropped live batches are covered (the
     * engine answers from its buffer as it is when the request arrives). Returns whether the previous request may
     * still be answered (its end marker never came), so this one must go on a fresh connection.
     */
    boolean sent(long nowMs) {
        deferred = false;
        nextRequestAllowedMs = nowMs + limits.replayMinIntervalMs();
        deadlineMs = nowMs + limits.replayTimeoutMs();
        overflowed = false;
        boolean fresh = requestOpen;
        requestOpen = true;
        return fresh;
    }

    /** Something came back (or the socket reconnected): the reply timeout starts over. */
    void extendDeadline(long nowMs) {
        deadlineMs = nowMs + limits.replayTimeoutMs();
    }

    /** Whether the reply stream under way has been quiet for the reply timeout. */
    boolean timedOut(long nowMs) {
        return awaitingReplies() && nowMs >= deadlineMs;
    }

    /** The reply stream's end marker came back. */
    void endMarker() {
        requestOpen = false;
    }

    /** Asks {@code why} once the current reply stream ends; the rest of this one is discarded. */
    void followUp(Purpose why) {
        followUp = why;
    }

    /** Whether the current reply stream is being discarded for a follow-up. */
    boolean discarding() {
        return followUp != null;
    }

    /** The follow-up to ask now that the stream ended, or null; cleared. */
    Purpose takeFollowUp() {
        Purpose next = followUp;
        followUp = null;
        return next;
    }

    /** Whether the cursor or the incarnation moved since the request: a restart found counts as progress too. */
    private boolean progressed(long cursor, long incarnation) {
        return cursor != cursorAtRequest || incarnation != incarnationAtRequest;
    }

    /**
     * Counts the request whose reply stream just ended (every request counts, follow-ups included); returns whether
     * {@code replayMaxAttempts} in a row have now brought nothing.
     */
    boolean countTry(long cursor, long incarnation) {
        attemptsWithoutProgress = progressed(cursor, incarnation) ? 0 : attemptsWithoutProgress + 1;
        return attemptsWithoutProgress >= limits.replayMaxAttempts();
    }

    /** Whether the request under way is the last try: nothing gained so far, and one short of the limit. */
    boolean lastTry(long cursor, long incarnation) {
        return !progressed(cursor, incarnation) && attemptsWithoutProgress + 1 >= limits.replayMaxAttempts();
    }

    /** Ends the attempt; returns its purpose. The try count starts over. */
    Purpose finish() {
        active = false;
        probing = false;
        attemptsWithoutProgress = 0;
        return purpose;
    }

    /** Ends the attempt without a reply stream (the engine was removed). */
    void cancel() {
        active = false;
        deferred = false;
    }

    /** The next attempt is the silence probe. */
    void markProbing() {
        probing = true;
    }

    boolean probing() {
        return probing;
    }

    /** The probe brought something: returns whether this attempt was probing; it no longer is. */
    boolean probeAnswered() {
        boolean was = probing;
        probing = false;
        return was;
    }

    void markOverflowed() {
        overflowed = true;
    }

    boolean overflowed() {
        return overflowed;
    }
}
