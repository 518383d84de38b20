package io.kvbroker.codec;

import io.kvbroker.codec.MalformedMessageException.Reason;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.core.buffer.ArrayBufferInput;

/**
 * Reads msgpack values straight from a received frame, checking every declared length against the bytes left.
 *
 * <p>Design note: msgpack-core does the bulk of the work (headers, integers, skipping). Strings that are only
 * compared (event tags, map keys, medium and kind names) and 64-bit hashes are read from the frame's own array at the
 * unpacker's position and then skipped, so they cost no allocation. Not thread-safe; one per decoding thread.
 */
final class WireReader {
    /** Deeper nesting than this in a free-form value (extra keys) is rejected; real keys nest two or three levels. */
    static final int MAX_DEPTH = 16;

    private final ArrayBufferInput input = new ArrayBufferInput(new byte[0]);
    private final MessageUnpacker unpacker = MessagePack.newDefaultUnpacker(input);
    private byte[] buf = new byte[0];
    private int base;
    private int end;
    /** Length of the string whose header {@link #stringPayloadStart()} read last. */
    private int stringLength;

    void reset(byte[] frame, int offset, int length) throws IOException {
        buf = frame;
        base = offset;
        end = offset + length;
        input.reset(frame, offset, length);
        unpacker.reset(input);
    }

    /** Absolute index in the frame array of the next byte to read. */
    int position() {
        return base + (int) unpacker.getTotalReadBytes();
    }

    int remaining() {
        return end - position();
    }

    /** The format byte of the next value, without consuming it. */
    int peekByte() throws MalformedMessageException {
        int pos = position();
        if (pos >= end) {
            throw new MalformedMessageException(Reason.TRUNCATED, "message ends where a value was expected");
        }
        return buf[pos] & 0xff;
    }

    MessageFormat peekFormat() throws MalformedMessageException {
        int format = peekByte();
        if (format == 0xc1) {
            throw new MalformedMessageException(Reason.INVALID_FORMAT, "byte 0xc1 is not a msgpack format");
        }
        return MessageFormat.valueOf((byte) format);
    }

    boolean tryNil() throws IOException, MalformedMessageException {
        if (peekByte() == 0xc0) {
            unpacker.unpackNil();
            return true;
        }
        return false;
    }

    boolean isArray() throws MalformedMessageException {
        int b = peekByte();
        return (b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd;
    }

    boolean isMap() throws MalformedMessageException {
        int b = peekByte();
        return (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
    }

    /** An array header whose count could fit in the bytes left (each element takes at least one byte). */
    int arrayHeader() throws IOException, MalformedMessageException {
        if (!isArray()) {
            throw wrongType("array");
        }
        int count = unpacker.unpackArrayHeader();
        if (count > remaining()) {
            throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                    "array declares " + count + " elements but " + remaining() + " bytes are left");
        }
        return count;
    }

    /** A map header whose entries could fit in the bytes left (each entry takes at least two bytes). */
    int mapHeader() throws IOException, MalformedMessageException {
        if (!isMap()) {
            throw wrongType("map");
        }
        int count = unpacker.unpackMapHeader();
        if ((long) count * 2 > remaining()) {
            throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                    "map declares " + count + " entries but " + remaining() + " bytes are left");
        }
        return count;
    }

    /**
     * A block hash as 64 unsigned bits: an integer of any msgpack width, or a {@code bin} digest reduced to its last
     * 8 bytes read big-endian (the bytes the engine keeps for its integer form). Negative integers, which releases
     * that used Python's {@code hash()} sent, keep their two's-complement bits.
     */
    long hash() throws IOException, MalformedMessageException {
        int pos = position();
        int format = peekByte();
        if (format == 0xcf) {
            requireBytes(pos, 9);
            long value = readLongBigEndian(pos + 1, 8);
            unpacker.skipValue();
            return value;
        }
        if (format <= 0x7f || format >= 0xe0 || (format >= 0xcc && format <= 0xd3)) {
            return unpacker.unpackLong();
        }
        if (format >= 0xc4 && format <= 0xc6) {
            int headerSize = format == 0xc4 ? 2 : format == 0xc5 ? 3 : 5;
            requireBytes(pos, headerSize);
            long length = readLongBigEndian(pos + 1, headerSize - 1);
            if (length > remaining() - headerSize) {
                throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                        "hash bin declares " + length + " bytes but " + (remaining() - headerSize) + " are left");
            }
            if (length == 0) {
                throw new MalformedMessageException(Reason.OUT_OF_RANGE, "hash bin is empty");
            }
            int payload = pos + headerSize;
            int take = (int) Math.min(8, length);
            long value = readLongBigEndian(payload + (int) length - take, take);
            unpacker.skipValue();
            return value;
        }
        throw wrongType("integer or bin hash");
    }

    /** A non-negative integer that fits an {@code int}. */
    int nonNegativeInt() throws IOException, MalformedMessageException {
        if (peekFormat().getValueType() != org.msgpack.value.ValueType.INTEGER) {
            throw wrongType("integer");
        }
        long value = unpacker.unpackLong();
        if (value < 0 || value > Integer.MAX_VALUE) {
            throw new MalformedMessageException(Reason.OUT_OF_RANGE, "integer " + value + " is outside 0.."
                    + Integer.MAX_VALUE);
        }
        return (int) value;
    }

    /** Any integer that fits an {@code int} (token ids). */
    int intValue() throws IOException, MalformedMessageException {
        int format = peekByte();
        if (!(format <= 0x7f || format >= 0xe0 || (format >= 0xcc && format <= 0xd3))) {
            throw wrongType("integer");
        }
        return unpacker.unpackInt();
    }

    /** A float or integer read as a double (timestamps). */
    double number() throws IOException, MalformedMessageException {
        org.msgpack.value.ValueType type = peekFormat().getValueType();
        if (type == org.msgpack.value.ValueType.FLOAT) {
            return unpacker.unpackDouble();
        }
        if (type == org.msgpack.value.ValueType.INTEGER) {
            return unpacker.unpackLong();
        }
        throw wrongType("number");
    }

    /**
     * Consumes a string and returns the index of the name it equals, or -1; compares bytes without decoding.
     * A value that is not a string also gives -1 (and is skipped) when {@code lenient}.
     */
    int matchName(byte[][] names, boolean lenient) throws IOException, MalformedMessageException {
        if (!isString()) {
            if (lenient) {
                unpacker.skipValue();
                return -1;
            }
            throw wrongType("string");
        }
        int start = stringPayloadStart();
        int match = -1;
        for (int i = 0; i < names.length && match < 0; i++) {
            byte[] name = names[i];
            if (name.length == stringLength && regionEquals(start, name)) {
                match = i;
            }
        }
        unpacker.skipValue();
        return match;
    }

    /** A string, decoded as UTF-8 (malformed sequences become U+FFFD, as they cannot harm a name). */
    String string() throws IOException, MalformedMessageException {
        if (!isString()) {
            throw wrongType("string");
        }
        int start = stringPayloadStart();
        String value = new String(buf, start, stringLength, StandardCharsets.UTF_8);
        unpacker.skipValue();
        return value;
    }

    boolean isString() throws MalformedMessageException {
        int format = peekByte();
        return (format & 0xe0) == 0xa0 || (format >= 0xd9 && format <= 0xdb);
    }

    /**
     * Reads the header of the string at the current position without consuming it, checks its length against the
     * bytes left, leaves the length in {@link #stringLength} and returns where its bytes start.
     */
    private int stringPayloadStart() throws MalformedMessageException {
        int pos = position();
        int format = peekByte();
        int headerSize;
        long length;
        if ((format & 0xe0) == 0xa0) {
            headerSize = 1;
            length = format & 0x1f;
        } else {
            headerSize = format == 0xd9 ? 2 : format == 0xda ? 3 : 5;
            requireBytes(pos, headerSize);
            length = readLongBigEndian(pos + 1, headerSize - 1);
        }
        if (length > end - pos - headerSize) {
            throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                    "string declares " + length + " bytes but " + (end - pos - headerSize) + " are left");
        }
        stringLength = (int) length;
        return pos + headerSize;
    }

    /** A string or nil. */
    String stringOrNull() throws IOException, MalformedMessageException {
        return tryNil() ? null : string();
    }

    /**
     * A free-form value (an entry of extra keys): nil, boolean, integer, float, string, bin or an array of those,
     * nested at most {@link #MAX_DEPTH} deep. Lists are unmodifiable.
     */
    Object freeValue(int depth) throws IOException, MalformedMessageException {
        if (depth > MAX_DEPTH) {
            throw new MalformedMessageException(Reason.TOO_DEEP, "values nest deeper than " + MAX_DEPTH);
        }
        MessageFormat format = peekFormat();
        switch (format.getValueType()) {
            case NIL:
                unpacker.unpackNil();
                return null;
            case BOOLEAN:
                return unpacker.unpackBoolean();
            case INTEGER:
                return format == MessageFormat.UINT64 ? hash() : unpacker.unpackLong();
            case FLOAT:
                return unpacker.unpackDouble();
            case STRING:
                return string();
            case BINARY: {
                int length = unpacker.unpackBinaryHeader();
                if (length > remaining()) {
                    throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                            "bin declares " + length + " bytes but " + remaining() + " are left");
                }
                byte[] bytes = new byte[length];
                unpacker.readPayload(bytes);
                return bytes;
            }
            case ARRAY: {
                int count = arrayHeader();
                List<Object> list = new ArrayList<>(count);
                for (int i = 0; i < count; i++) {
                    list.add(freeValue(depth + 1));
                }
                return Collections.unmodifiableList(list);
            }
            default:
                throw wrongType("nil, boolean, number, string, bin or array");
        }
    }

    void skip() throws IOException {
        unpacker.skipValue();
    }

    MalformedMessageException wrongType(String expected) throws MalformedMessageException {
        return new MalformedMessageException(Reason.WRONG_TYPE,
                "expected " + expected + ", found " + peekFormat().getValueType().name().toLowerCase(
                        java.util.Locale.ROOT));
    }

    private void requireBytes(int pos, int count) throws MalformedMessageException {
        if (end - pos < count) {
            throw new MalformedMessageException(Reason.TRUNCATED, "message ends inside a value");
        }
    }

    private long readLongBigEndian(int from, int count) {
        long value = 0;
        for (int i = 0; i < count; i++) {
            value = (value << 8) | (buf[from + i] & 0xffL);
        }
        return value;
    }

    private boolean regionEquals(int start, byte[] name) {
        for (int i = 0; i < name.length; i++) {
            if (buf[start + i] != name[i]) {
                return false;
            }
        }
        return true;
    }
}
