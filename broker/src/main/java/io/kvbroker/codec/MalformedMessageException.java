package io.kvbroker.codec;

/**
 * A message from an engine that cannot be decoded, with the reason it was rejected.
 *
 * <p>Design note: this is the only exception the codec throws for bad input. It carries no stack trace: bad input
 * is an expected event on an open port, counted per engine and reason, and must stay cheap.
 */
public final class MalformedMessageException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Why a message was rejected; {@link #label()} is the value of the metrics label. */
    public enum Reason {
        /** The message ends in the middle of a value. */
        TRUNCATED,
        /** A declared length (array, map, string, bin) is larger than the bytes left in the message. */
        LENGTH_EXCEEDS_INPUT,
        /** A value has a msgpack type the contract does not allow there. */
        WRONG_TYPE,
        /** An integer is outside the range its field allows. */
        OUT_OF_RANGE,
        /** The batch is not an array of at least two elements. */
        BAD_BATCH_SHAPE,
        /** A required field of an event is absent or nil. */
        MISSING_FIELD,
        /** Values nest deeper than any real event does. */
        TOO_DEEP,
        /** Bytes follow the batch. */
        TRAILING_BYTES,
        /** A byte that is no msgpack format code (0xc1). */
        INVALID_FORMAT,
        /** A ZeroMQ message with a frame count the contract does not have. */
        WRONG_FRAME_COUNT,
        /** A sequence frame that is not exactly 8 bytes. */
        BAD_SEQUENCE_FRAME,
        /** A frame that must be empty (the replay delimiter) is not. */
        BAD_DELIMITER,
        /**
         * A batch sequence too far past the engine's highest to be real (more than 2^32 ahead): a stray, not a loss.
         */
        IMPLAUSIBLE_SEQUENCE,
        /** Anything else the msgpack library refused. */
        UNDECODABLE;

        /** Lower-case name for metrics labels and logs. */
        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final Reason reason;

    public MalformedMessageException(Reason reason, String message) {
        super(reason.label() + ": " + message, null, false, false);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
