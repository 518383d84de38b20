package io.kvbroker.engine;

/**
 * One life of an engine process: from its start (sequence 0) to its restart, which begins the next incarnation.
 *
 * <p>Design note: everything an engine announced belongs to one incarnation; when kvbroker sees the engine restart
 * (its sequence went backwards, or a reconnect's replay does not match the stored fingerprint) the engine's state is
 * cleared and the number goes up. Numbers only grow for a given engine, so a resume point that names an older
 * incarnation is known to be stale.
 *
 * @param engineId the engine's small integer id
 * @param number 1 for the first incarnation kvbroker saw, then one more per restart
 * @param startedAtMillis wall-clock time kvbroker first saw this incarnation
 */
public record Incarnation(int engineId, long number, long startedAtMillis) {

    public Incarnation {
        if (number < 1) {
            throw new IllegalArgumentException("incarnation numbers start at 1, was " + number);
        }
    }

    /** The first incarnation kvbroker sees of an engine. */
    public static Incarnation first(int engineId, long nowMillis) {
        return new Incarnation(engineId, 1, nowMillis);
    }

    /** The incarnation after a restart. */
    public Incarnation next(long nowMillis) {
        return new Incarnation(engineId, number + 1, nowMillis);
    }
}
