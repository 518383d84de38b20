package io.kvbroker.codec;

import io.kvbroker.codec.MalformedMessageException.Reason;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Reads msgpack values straight from a received frame with a cursor, checking every declared length against the
 * bytes left before using it.
 *
 * <p>Design note: this replaced reading through msgpack-core's {@code MessageUnpacker}, which re-read each format
 * byte behind a virtual call and gave 0.37 of the floor on the realistic mix (BENCHMARKS.md has today's figure).
 * A cursor over the frame's own array reads names as bytes, integers of any width without boxing, and skips unknown
 * values iteratively, so deep nesting costs no stack. msgpack-core stays the encoder and the benchmark floor. Every
 * failure is a {@link MalformedMessageException} with a reason; not thread-safe, one per decoding thread.
 */
final class WireReader {
    /** Deeper nesting than this in a free-form value (extra keys) is rejected; real keys nest two or three levels. */
    static final int MAX_DEPTH = 16;

    private byte[] buf = new byte[0];
    private int pos;
    private int end;
    /** Length of the string or bin whose header was read last. */
    private int payloadLength;

    void reset(byte[] frame, int offset, int length) {
        buf = frame;
        pos = offset;
        end = offset + length;
    }

    int remaining() {
        return end - pos;
    }

    /** The format byte of the next value, without consuming it. */
    int peekByte() throws MalformedMessageException {
        if (pos >= end) {
            throw new MalformedMessageException(Reason.TRUNCATED, "message ends where a value was expected");
        }
        return buf[pos] & 0xff;
    }

    boolean tryNil() throws MalformedMessageException {
        if (peekByte() == 0xc0) {
            pos++;
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

    boolean isString() throws MalformedMessageException {
        int b = peekByte();
        return (b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb);
    }

    /** An array header whose count could fit in the bytes left (each element takes at least one byte). */
    int arrayHeader() throws MalformedMessageException {
        int b = peekByte();
        long count;
        if ((b & 0xf0) == 0x90) {
            count = b & 0x0f;
            pos++;
        } else if (b == 0xdc || b == 0xdd) {
            count = readLength(b == 0xdc ? 2 : 4);
        } else {
            throw wrongType("array");
        }
        if (count > remaining()) {
            throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                    "array declares " + count + " elements but " + remaining() + " bytes are left");
        }
        return (int) count;
    }

    /** A map header whose entries could fit in the bytes left (each entry takes at least two bytes). */
    int mapHeader() throws MalformedMessageException {
        int b = peekByte();
        long count;
        if ((b & 0xf0) == 0x80) {
            count = b & 0x0f;
            pos++;
        } else if (b == 0xde || b == 0xdf) {
            count = readLength(b == 0xde ? 2 : 4);
        } else {
            throw wrongType("map");
        }
        if (count * 2 > remaining()) {
            throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                    "map declares " + count + " entries but " + remaining() + " bytes are left");
        }
        return (int) count;
    }

    /**
     * An integer of any msgpack width. A {@code uint64} of 2^63 or more keeps its 64 bits, so it reads as negative;
     * callers that need a range check it.
     */
    long integer() throws MalformedMessageException {
        int b = peekByte();
        if (b <= 0x7f) {
            pos++;
            return b;
        }
        if (b >= 0xe0) {
            pos++;
            return (byte) b;
        }
        switch (b) {
            case 0xcc: require(2); pos += 2; return buf[pos - 1] & 0xffL;
            case 0xcd: require(3); pos += 3; return bigEndian(pos - 2, 2);
            case 0xce: require(5); pos += 5; return bigEndian(pos - 4, 4);
            case 0xcf: require(9); pos += 9; return bigEndian(pos - 8, 8);
            case 0xd0: require(2); pos += 2; return buf[pos - 1];
            case 0xd1: require(3); pos += 3; return (short) bigEndian(pos - 2, 2);
            case 0xd2: require(5); pos += 5; return (int) bigEndian(pos - 4, 4);
            case 0xd3: require(9); pos += 9; return bigEndian(pos - 8, 8);
            default: throw wrongType("integer");
        }
    }

    /**
     * A block hash as 64 unsigned bits: an integer of any width, or a {@code bin} digest reduced to its last 8 bytes
     * read big-endian (the bytes the engine keeps for its integer form). Negative integers, which releases that used
     * Python's {@code hash()} sent, keep their two's-complement bits.
     */
    long hash() throws MalformedMessageException {
        int b = peekByte();
        if (b < 0xc4 || b > 0xc6) {
            return integer();
        }
        int start = binPayloadStart();
        if (payloadLength == 0) {
            throw new MalformedMessageException(Reason.OUT_OF_RANGE, "hash bin is empty");
        }
        int take = Math.min(8, payloadLength);
        long value = bigEndian(start + payloadLength - take, take);
        pos = start + payloadLength;
        return value;
    }

    /** A non-negative integer that fits an {@code int}. */
    int nonNegativeInt() throws MalformedMessageException {
        long value = integer();
        if (value < 0 || value > Integer.MAX_VALUE) {
            throw new MalformedMessageException(Reason.OUT_OF_RANGE,
                    "integer " + Long.toUnsignedString(value) + " is outside 0.." + Integer.MAX_VALUE);
        }
        return (int) value;
    }

    /** Any integer that fits an {@code int} (token ids). */
    int intValue() throws MalformedMessageException {
        int b = peekByte();
        // Token ids are mostly positive fixints, uint8, uint16 or uint32: read those without the general switch.
        if (b <= 0x7f) {
            pos++;
            return b;
        }
        if (b == 0xce && end - pos >= 5) {
            long value = bigEndian(pos + 1, 4);
            if (value <= Integer.MAX_VALUE) {
                pos += 5;
                return (int) value;
            }
        }
        long value = integer();
        if (value < Integer.MIN_VALUE || value > Integer.MAX_VALUE || (b == 0xcf && value < 0)) {
            throw new MalformedMessageException(Reason.OUT_OF_RANGE,
                    "integer " + (b == 0xcf ? Long.toUnsignedString(value) : value) + " does not fit 32 bits");
        }
        return (int) value;
    }

    /**
     * Fills {@code into} with {@code into.length} integers that each fit an {@code int} (token ids). The widths token
     * ids come in are read in one tight loop; anything else goes through {@link #intValue()}.
     */
    void intArray(int[] into) throws MalformedMessageException {
        byte[] b = buf;
        for (int i = 0; i < into.length; i++) {
            int p = pos;
            int format = p < end ? b[p] & 0xff : -1;
            if (format >= 0 && format <= 0x7f) {
                into[i] = format;
                pos = p + 1;
            } else if (format == 0xcd && end - p >= 3) {
                into[i] = ((b[p + 1] & 0xff) << 8) | (b[p + 2] & 0xff);
                pos = p + 3;
            } else if (format == 0xce && end - p >= 5 && b[p + 1] >= 0) {
                into[i] = ((b[p + 1] & 0xff) << 24) | ((b[p + 2] & 0xff) << 16) | ((b[p + 3] & 0xff) << 8)
                        | (b[p + 4] & 0xff);
                pos = p + 5;
            } else if (format == 0xcc && end - p >= 2) {
                into[i] = b[p + 1] & 0xff;
                pos = p + 2;
            } else {
                into[i] = intValue();
            }
        }
    }

    /** A float or integer read as a double (timestamps). */
    double number() throws MalformedMessageException {
        int b = peekByte();
        if (b == 0xcb) {
            require(9);
            pos += 9;
            return Double.longBitsToDouble(bigEndian(pos - 8, 8));
        }
        if (b == 0xca) {
            require(5);
            pos += 5;
            return Float.intBitsToFloat((int) bigEndian(pos - 4, 4));
        }
        if (b == 0xcf) {
            return unsignedToDouble(integer());
        }
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) {
            return integer();
        }
        throw wrongType("number");
    }

    /**
     * Consumes a string and returns the index of the name it equals, or -1; compares bytes without decoding.
     * A value that is not a string also gives -1 (and is skipped) when {@code lenient}.
     */
    int matchName(byte[][] names, boolean lenient) throws MalformedMessageException {
        return matchName(names, lenient, 0);
    }

    /**
     * As {@link #matchName(byte[][], boolean)}, trying {@code names[likely]} first: map-form fields usually come in
     * declaration order, so the decoder passes the index after the last field it read.
     */
    int matchName(byte[][] names, boolean lenient, int likely) throws MalformedMessageException {
        if (!isString()) {
            if (lenient) {
                skip();
                return -1;
            }
            throw wrongType("string");
        }
        int start = stringPayloadStart();
        int length = payloadLength;
        pos = start + length;
        if (likely < names.length && names[likely].length == length && regionEquals(start, names[likely])) {
            return likely;
        }
        for (int i = 0; i < names.length; i++) {
            byte[] name = names[i];
            if (name.length == length && regionEquals(start, name)) {
                return i;
            }
        }
        return -1;
    }

    /** A string, decoded as UTF-8 (malformed sequences become U+FFFD, as they cannot harm a name). */
    String string() throws MalformedMessageException {
        if (!isString()) {
            throw wrongType("string");
        }
        int start = stringPayloadStart();
        pos = start + payloadLength;
        return new String(buf, start, payloadLength, StandardCharsets.UTF_8);
    }

    /** A string or nil. */
    String stringOrNull() throws MalformedMessageException {
        return tryNil() ? null : string();
    }

    /**
     * A free-form value (an entry of extra keys): nil, boolean, integer, float, string, bin or an array of those,
     * nested at most {@link #MAX_DEPTH} deep. Lists are unmodifiable.
     */
    Object freeValue(int depth) throws MalformedMessageException {
        if (depth > MAX_DEPTH) {
            throw new MalformedMessageException(Reason.TOO_DEEP, "values nest deeper than " + MAX_DEPTH);
        }
        int b = peekByte();
        if (b == 0xc0) {
            pos++;
            return null;
        }
        if (b == 0xc2 || b == 0xc3) {
            pos++;
            return b == 0xc3;
        }
        if (b == 0xca || b == 0xcb) {
            return number();
        }
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) {
            return integer();
        }
        if (isString()) {
            return string();
        }
        if (b >= 0xc4 && b <= 0xc6) {
            int start = binPayloadStart();
            pos = start + payloadLength;
            return java.util.Arrays.copyOfRange(buf, start, start + payloadLength);
        }
        if (isArray()) {
            int count = arrayHeader();
            List<Object> list = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                list.add(freeValue(depth + 1));
            }
            return Collections.unmodifiableList(list);
        }
        throw wrongType("nil, boolean, number, string, bin or array");
    }

    /** Skips one value of any type, nested containers included, without recursion. */
    void skip() throws MalformedMessageException {
        long pending = 1;
        while (pending > 0) {
            pending--;
            int b = peekByte();
            if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
                pos++;
            } else if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
                pending += arrayHeader();
            } else if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
                pending += 2L * mapHeader();
            } else if (isString()) {
                pos = stringPayloadStart() + payloadLength;
            } else if (b >= 0xc4 && b <= 0xc6) {
                pos = binPayloadStart() + payloadLength;
            } else if (b >= 0xc7 && b <= 0xc9) {
                // ext 8/16/32: length, then a type byte, then the payload.
                long length = readLength(b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4);
                skipBytes(length + 1);
            } else if (b >= 0xd4 && b <= 0xd8) {
                // fixext 1/2/4/8/16: the marker, a type byte, then 2^(b-0xd4) bytes.
                pos++;
                skipBytes(1L + (1L << (b - 0xd4)));
            } else if (b == 0xc1) {
                throw new MalformedMessageException(Reason.INVALID_FORMAT, "byte 0xc1 is not a msgpack format");
            } else {
                // Numbers of fixed width: 0xca..0xd3.
                int size = switch (b) {
                    case 0xca, 0xce, 0xd2 -> 5;
                    case 0xcb, 0xcf, 0xd3 -> 9;
                    case 0xcc, 0xd0 -> 2;
                    default -> 3;
                };
                require(size);
                pos += size;
            }
            if (pending > remaining()) {
                throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                        pending + " values are declared but " + remaining() + " bytes are left");
            }
        }
    }

    MalformedMessageException wrongType(String expected) throws MalformedMessageException {
        if (peekByte() == 0xc1) {
            return new MalformedMessageException(Reason.INVALID_FORMAT, "byte 0xc1 is not a msgpack format");
        }
        return new MalformedMessageException(Reason.WRONG_TYPE, "expected " + expected + ", found "
                + typeName(peekByte()));
    }

    /** Reads the header of the string here, checks its length against the bytes left, returns where it starts. */
    private int stringPayloadStart() throws MalformedMessageException {
        int b = buf[pos] & 0xff;
        long length;
        if ((b & 0xe0) == 0xa0) {
            length = b & 0x1f;
            pos++;
        } else {
            length = readLength(b == 0xd9 ? 1 : b == 0xda ? 2 : 4);
        }
        return payloadStart(length, "string");
    }

    private int binPayloadStart() throws MalformedMessageException {
        int b = buf[pos] & 0xff;
        return payloadStart(readLength(b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4), "bin");
    }

    private int payloadStart(long length, String what) throws MalformedMessageException {
        if (length > remaining()) {
            throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                    what + " declares " + length + " bytes but " + remaining() + " are left");
        }
        payloadLength = (int) length;
        return pos;
    }

    /** Consumes a format byte followed by a big-endian length of {@code size} bytes. */
    private long readLength(int size) throws MalformedMessageException {
        require(1 + size);
        long length = bigEndian(pos + 1, size);
        pos += 1 + size;
        return length;
    }

    private void skipBytes(long count) throws MalformedMessageException {
        if (count > remaining()) {
            throw new MalformedMessageException(Reason.LENGTH_EXCEEDS_INPUT,
                    "value declares " + count + " bytes but " + remaining() + " are left");
        }
        pos += (int) count;
    }

    private void require(int count) throws MalformedMessageException {
        if (end - pos < count) {
            throw new MalformedMessageException(Reason.TRUNCATED, "message ends inside a value");
        }
    }

    private long bigEndian(int from, int count) {
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

    private static double unsignedToDouble(long bits) {
        return bits >= 0 ? bits : (double) (bits >>> 1) * 2.0;
    }

    private static String typeName(int b) {
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) {
            return "integer";
        }
        if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb)) {
            return "string";
        }
        if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
            return "array";
        }
        if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
            return "map";
        }
        return switch (b) {
            case 0xc0 -> "nil";
            case 0xc2, 0xc3 -> "boolean";
            case 0xc4, 0xc5, 0xc6 -> "bin";
            case 0xca, 0xcb -> "float";
            case 0xc1 -> "the invalid byte 0xc1";
            default -> "extension";
        };
    }
}
