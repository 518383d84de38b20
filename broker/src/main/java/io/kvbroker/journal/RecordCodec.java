package io.kvbroker.journal;

import io.kvbroker.index.HoldingChanges;
import io.kvbroker.index.ResolvedBatch;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.BufferUnderflowException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Encodes log records and engine cursors as compact bytes: varints for counts, sequences and small fields, eight
 * bytes for each engine hash and content key, no token ids.
 *
 * <p>Design note: hashes and keys are uniformly random 64-bit values, so no general compressor shrinks them; what
 * can be saved is everything around them, which varints do. A stored block costs 16 bytes plus a few per event.
 */
final class RecordCodec {
    static final byte FORMAT = 2;
    private static final byte STORE = 1;
    private static final byte STORE_TOKENLESS = 2;
    private static final byte REMOVE = 3;
    private static final byte CLEAR = 4;
    private static final byte EVICT = 5;

    private RecordCodec() {
    }

    static byte[] encode(LogRecord record) {
        Out out = new Out(64);
        out.write(FORMAT);
        out.string(record.engine());
        out.varLong(record.incarnation());
        out.varLong(record.sequence() + 1);
        out.varLong(record.timeMs());
        out.fixed(record.fingerprint());
        List<ResolvedBatch.Change> changes = record.batch().changes();
        out.varLong(changes.size());
        for (ResolvedBatch.Change change : changes) {
            if (change instanceof ResolvedBatch.Store store) {
                out.write(store.tokenless() ? STORE_TOKENLESS : STORE);
                out.write(store.medium());
                out.longs(store.hashes());
                if (!store.tokenless()) {
                    out.write(store.hasParent() ? 1 : 0);
                    if (store.hasParent()) {
                        out.fixed(store.parentHash());
                    }
                    out.varLong(store.span());
                    for (long key : store.keys()) {
                        out.fixed(key);
                    }
                }
            } else if (change instanceof ResolvedBatch.Remove remove) {
                out.write(REMOVE);
                out.write(remove.medium());
                out.longs(remove.hashes());
            } else if (change instanceof ResolvedBatch.Clear clear) {
                out.write(CLEAR);
                out.write(clear.media());
            } else if (change instanceof ResolvedBatch.Evict evict) {
                out.write(EVICT);
                out.longs(evict.hashes());
                for (long key : evict.keys()) {
                    out.fixed(key);
                }
            }
        }
        HoldingChanges holdings = record.batch().holdings();
        out.write(holdings.cleared() ? 1 : 0);
        out.varLong(holdings.size());
        for (int i = 0; i < holdings.size(); i++) {
            out.fixed(holdings.key(i));
            out.varLong(holdings.value(i));
        }
        return out.toByteArray();
    }

    /**
     * @throws JournalException if the bytes are not a record this release can read
     */
    static LogRecord decode(byte[] bytes) {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        try {
            byte format = in.get();
            if (format != FORMAT) {
                throw new JournalException("log record format " + format + ", this release reads " + FORMAT);
            }
            String engine = string(in);
            long incarnation = varLong(in);
            long sequence = varLong(in) - 1;
            long timeMs = varLong(in);
            long fingerprint = in.getLong();
            int count = (int) varLong(in);
            List<ResolvedBatch.Change> changes = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                byte op = in.get();
                switch (op) {
                    case STORE, STORE_TOKENLESS -> {
                        int medium = in.get();
                        long[] hashes = longs(in);
                        if (op == STORE_TOKENLESS) {
                            changes.add(new ResolvedBatch.Store(hashes, false, 0, 0, null, medium));
                        } else {
                            boolean hasParent = in.get() != 0;
                            long parent = hasParent ? in.getLong() : 0;
                            int span = (int) varLong(in);
                            long[] keys = fixed(in, hashes.length);
                            changes.add(new ResolvedBatch.Store(hashes, hasParent, parent, span, keys, medium));
                        }
                    }
                    case REMOVE -> {
                        int medium = in.get();
                        changes.add(new ResolvedBatch.Remove(longs(in), medium));
                    }
                    case CLEAR -> changes.add(new ResolvedBatch.Clear(in.get()));
                    case EVICT -> {
                        long[] hashes = longs(in);
                        changes.add(new ResolvedBatch.Evict(hashes, fixed(in, hashes.length)));
                    }
                    default -> throw new JournalException("log record with unknown change " + op);
                }
            }
            boolean cleared = in.get() != 0;
            int held = (int) Math.min(Integer.MAX_VALUE, varLong(in));
            if (held < 0 || held > in.remaining() / 9) {
                throw new BufferUnderflowException();
            }
            long[] keys = new long[held];
            int[] values = new int[held];
            for (int i = 0; i < held; i++) {
                keys[i] = in.getLong();
                values[i] = (int) varLong(in);
            }
            HoldingChanges holdings = !cleared && held == 0 ? HoldingChanges.NONE
                    : new HoldingChanges(cleared, keys, values);
            return new LogRecord(engine, incarnation, sequence, timeMs, new ResolvedBatch(changes, holdings),
                    fingerprint);
        } catch (BufferUnderflowException | IllegalArgumentException e) {
            throw new JournalException("log record cut short or damaged", e);
        }
    }

    // ---- primitives ----

    /** A growable output with varint writers. */
    static final class Out extends ByteArrayOutputStream {
        Out(int size) {
            super(size);
        }

        void varLong(long value) {
            while ((value & ~0x7FL) != 0) {
                write((int) ((value & 0x7F) | 0x80));
                value >>>= 7;
            }
            write((int) value);
        }

        void fixed(long value) {
            for (int shift = 56; shift >= 0; shift -= 8) {
                write((int) (value >>> shift));
            }
        }

        void longs(long[] values) {
            varLong(values.length);
            for (long value : values) {
                fixed(value);
            }
        }

        void string(String value) {
            byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
            varLong(utf8.length);
            write(utf8, 0, utf8.length);
        }
    }

    static long varLong(ByteBuffer in) {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            byte b = in.get();
            value |= (long) (b & 0x7F) << shift;
            if (b >= 0) {
                return value;
            }
        }
        throw new IllegalArgumentException("varint longer than 10 bytes");
    }

    static long[] fixed(ByteBuffer in, int count) {
        if (count < 0 || count > in.remaining() / 8) {
            throw new BufferUnderflowException();
        }
        long[] values = new long[count];
        in.asLongBuffer().get(values);
        in.position(in.position() + 8 * count);
        return values;
    }

    static long[] longs(ByteBuffer in) {
        return fixed(in, (int) Math.min(Integer.MAX_VALUE, varLong(in)));
    }

    static String string(ByteBuffer in) {
        int length = (int) varLong(in);
        if (length < 0 || length > in.remaining()) {
            throw new BufferUnderflowException();
        }
        String value = new String(in.array(), in.position(), length, StandardCharsets.UTF_8);
        in.position(in.position() + length);
        return value;
    }
}
