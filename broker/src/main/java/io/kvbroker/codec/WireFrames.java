package io.kvbroker.codec;

import io.kvbroker.codec.MalformedMessageException.Reason;

/**
 * Splits vLLM's ZeroMQ messages into topic, sequence and payload: live PUB messages and replies on the replay
 * DEALER socket, in both the current and the older reply layout.
 *
 * <p>Design note: frames are handed on as the arrays the socket returned; nothing is copied.
 */
public final class WireFrames {
    /** The sequence of the replay end marker: all ones. */
    public static final long END_OF_REPLAY = -1L;

    private static final byte[] EMPTY = new byte[0];

    private WireFrames() {
    }

    /** A live batch: {@code [topic, seq, payload]}. */
    public record LiveMessage(byte[] topic, long sequence, byte[] payload) {
    }

    /**
     * One reply of a replay: a batch, or the end marker when {@link #isEnd()}.
     *
     * @param topic the topic frame (empty in the older layout, which does not send it)
     * @param sequence the batch's sequence, or {@link #END_OF_REPLAY}
     * @param payload the batch, empty for the end marker
     */
    public record ReplayMessage(byte[] topic, long sequence, byte[] payload) {
        public boolean isEnd() {
            return sequence == END_OF_REPLAY && payload.length == 0;
        }
    }

    /** Parses a live message of exactly three frames. */
    public static LiveMessage live(byte[][] frames) throws MalformedMessageException {
        return live(frames, frames.length);
    }

    /** Parses a live message from the first {@code count} entries of {@code frames} (a reused array). */
    public static LiveMessage live(byte[][] frames, int count) throws MalformedMessageException {
        if (count != 3) {
            throw new MalformedMessageException(Reason.WRONG_FRAME_COUNT,
                    "a live message has 3 frames (topic, seq, payload), found " + count);
        }
        return new LiveMessage(frames[0], batchSequence(sequence(frames[1])), frames[2]);
    }

    /**
     * Parses what a DEALER receives from the engine's ROUTER: {@code ["", topic, seq, payload]} (vLLM 0.26+) or
     * {@code ["", seq, payload]} (older), told apart by the number of frames after the empty delimiter.
     */
    public static ReplayMessage replay(byte[][] frames) throws MalformedMessageException {
        return replay(frames, frames.length);
    }

    /** Parses a replay reply from the first {@code count} entries of {@code frames} (a reused array). */
    public static ReplayMessage replay(byte[][] frames, int count) throws MalformedMessageException {
        if (count != 3 && count != 4) {
            throw new MalformedMessageException(Reason.WRONG_FRAME_COUNT,
                    "a replay reply has 4 frames (\"\", topic, seq, payload) or 3 (\"\", seq, payload), found "
                            + count);
        }
        if (frames[0].length != 0) {
            throw new MalformedMessageException(Reason.BAD_DELIMITER,
                    "a replay reply starts with an empty frame, found " + frames[0].length + " bytes");
        }
        ReplayMessage message = count == 4 ? new ReplayMessage(frames[1], sequence(frames[2]), frames[3])
                : new ReplayMessage(EMPTY, sequence(frames[1]), frames[2]);
        if (!message.isEnd()) {
            batchSequence(message.sequence());
        }
        return message;
    }

    /**
     * Refuses a batch sequence of 2^63 or more. An engine counts from 0 by one per batch and cannot get there, and
     * the broker keeps sequences in signed longs, where such a value would read as "before the first batch".
     */
    private static long batchSequence(long sequence) throws MalformedMessageException {
        if (sequence < 0) {
            throw new MalformedMessageException(Reason.BAD_SEQUENCE_FRAME,
                    "a batch sequence is below 2^63, found " + Long.toUnsignedString(sequence));
        }
        return sequence;
    }

    /** The two frames a DEALER sends to ask for every buffered batch from {@code startSequence} on. */
    public static byte[][] replayRequest(long startSequence) {
        return new byte[][] {EMPTY, sequenceFrame(startSequence)};
    }

    /** Reads an 8-byte big-endian unsigned sequence frame (kept in a long as unsigned bits). */
    public static long sequence(byte[] frame) throws MalformedMessageException {
        if (frame.length != 8) {
            throw new MalformedMessageException(Reason.BAD_SEQUENCE_FRAME,
                    "a sequence frame has 8 bytes, found " + frame.length);
        }
        long value = 0;
        for (int i = 0; i < 8; i++) {
            value = (value << 8) | (frame[i] & 0xffL);
        }
        return value;
    }

    /** Writes a sequence as the 8-byte big-endian frame engines send. */
    public static byte[] sequenceFrame(long sequence) {
        byte[] frame = new byte[8];
        for (int i = 7; i >= 0; i--) {
            frame[i] = (byte) sequence;
            sequence >>>= 8;
        }
        return frame;
    }
}
