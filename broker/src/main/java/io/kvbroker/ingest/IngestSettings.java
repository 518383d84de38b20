package io.kvbroker.ingest;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;

/**
 * Every {@code ingest.*} value the ingest stage uses, read once from the configuration: what the engine streams wait
 * for and hold ({@link EngineStream.Limits}), how the engine sockets are sized and reconnect, and listen mode.
 *
 * <p>Design note: it lives in {@code ingest}, beside the classes that use it, and its {@link #from} is the one place
 * in the package that reads the configuration, as {@code QueryLimits.from} is for {@code query}: {@code config} stays
 * below every stage and imports none of them, and {@code ZmqIngest}, {@code EngineStream}, {@code EngineSockets} and
 * {@code ListenAdmission} see typed values only.
 *
 * @param limits replay timeout, attempts, connect wait and minimum interval, silence, pending bound
 * @param listen listen mode (off by default)
 * @param receiveHighWaterMark messages each SUB holds unread (0: unlimited)
 * @param maxMessageBytes largest frame taken from an engine
 * @param reconnectIntervalMs first wait before ZeroMQ tries a lost connection again
 * @param reconnectIntervalMaxMs longest such wait (it doubles up to this)
 */
public record IngestSettings(EngineStream.Limits limits, ListenSettings listen, int receiveHighWaterMark,
        long maxMessageBytes, int reconnectIntervalMs, int reconnectIntervalMaxMs) {
    /** As {@code ingest.reconnectIntervalMaxMs}'s default, for tests that construct ingest directly. */
    static final int DEFAULT_RECONNECT_INTERVAL_MAX_MS = 500;
    /** The listen port's setting, for naming it when its port cannot be bound. */
    static final String LISTEN_PORT_KEY = Settings.INGEST_LISTEN_PORT.key();
    /** As {@code ingest.maxMessageBytes}'s default, for tests that construct ingest directly. */
    static final long DEFAULT_MAX_MESSAGE_BYTES = 33_554_432;

    public static IngestSettings from(BrokerConfig config) {
        EngineStream.Limits limits = new EngineStream.Limits(config.get(Settings.INGEST_REPLAY_TIMEOUT_MS),
                config.get(Settings.INGEST_REPLAY_MAX_ATTEMPTS), config.get(Settings.INGEST_SILENT_AFTER_MS),
                config.get(Settings.INGEST_MAX_PENDING_BATCHES), config.get(Settings.INGEST_REPLAY_CONNECT_WAIT_MS),
                config.get(Settings.INGEST_REPLAY_MIN_INTERVAL_MS), config.get(Settings.INGEST_MAX_PENDING_BYTES));
        ListenSettings listen = new ListenSettings(config.get(Settings.INGEST_LISTEN_HOST),
                config.get(Settings.INGEST_LISTEN_PORT), config.get(Settings.INGEST_LISTEN_MAX_RANKS),
                config.get(Settings.INGEST_LISTEN_REPLAY_PORT), config.get(Settings.INGEST_LISTEN_ALLOWED_TOPICS),
                config.get(Settings.INGEST_LISTEN_ALLOWED_ADDRESSES));
        return new IngestSettings(limits, listen,
                config.get(Settings.INGEST_RECEIVE_HIGH_WATER_MARK), config.get(Settings.INGEST_MAX_MESSAGE_BYTES),
                config.get(Settings.INGEST_RECONNECT_INTERVAL_MS),
                config.get(Settings.INGEST_RECONNECT_INTERVAL_MAX_MS));
    }

    /**
     * For tests that construct ingest directly: the defaults for the largest frame and the reconnect backoff's
     * ceiling (never below the first interval).
     */
    static IngestSettings of(EngineStream.Limits limits, ListenSettings listen, int receiveHighWaterMark,
            int reconnectIntervalMs) {
        return new IngestSettings(limits, listen, receiveHighWaterMark, DEFAULT_MAX_MESSAGE_BYTES, reconnectIntervalMs,
                Math.max(reconnectIntervalMs, DEFAULT_RECONNECT_INTERVAL_MAX_MS));
    }
}
