package io.kvbroker.index;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Tells a lock-free reader of the index which engines' writes its read overlapped: the writer numbers its writes
 * (one per batch or reset, each of one engine) and notes each write's engine in a ring.
 *
 * <p>Design note: a seqlock over the whole index would make every read that overlaps any batch start again, and at
 * ingest's full rate (a batch every few microseconds) reads would starve. Here a read is checked per engine: an
 * engine none of whose writes overlapped the read was read exactly as of its last applied batch (the shared
 * structures never move or tear an entry the writer is not changing, see {@code HolderTable} and
 * {@code LongIntTable}), and only the overlapped engines, usually none or one, are read again. The writer never
 * waits. The counter is odd while a write is under way: write {@code k} runs while it is {@code 2k + 1}.
 */
final class WriteLog {
    /** Writes remembered; a read overlapping more than half of this many is read again whole. */
    static final int RING = 4096;
    private static final VarHandle WRITES;

    static {
        try {
            WRITES = MethodHandles.lookup().findVarHandle(WriteLog.class, "writes", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // through WRITES
    private volatile long writes;
    private final int[] ring = new int[RING];

    // ---- the writer ----

    /** Marks the start of a write to {@code engineId}: before any of the write's changes. */
    void begin(int engineId) {
        long current = writes;
        ring[(int) ((current >>> 1) & (RING - 1))] = engineId;
        WRITES.setVolatile(this, current + 1);
        // The changes that follow must not become visible before the odd mark.
        VarHandle.storeStoreFence();
    }

    /** Marks the end of the write begun last: after all of its changes. */
    void end() {
        WRITES.setRelease(this, writes + 1);
    }

    // ---- readers ----

    /** The mark to pass to {@link #overlapped} when the read is done. */
    long mark() {
        return (long) WRITES.getAcquire(this);
    }

    /**
     * The engines written while the read that began at {@code mark} ran (duplicates possible, usually empty), or null
     * if too many writes overlapped to tell.
     */
    int[] overlapped(long mark) {
        // The read's loads must complete before the counter is read again.
        VarHandle.loadLoadFence();
        long now = (long) WRITES.getAcquire(this);
        long first = mark >>> 1;
        long last = ((now + 1) >>> 1) - 1;
        long count = last - first + 1;
        if (count <= 0) {
            return EMPTY;
        }
        if (count > RING / 2) {
            return null;
        }
        int[] engines = new int[(int) count];
        for (long k = first; k <= last; k++) {
            engines[(int) (k - first)] = ring[(int) (k & (RING - 1))];
        }
        // The ring entries read must not have been overwritten meanwhile.
        VarHandle.loadLoadFence();
        long after = (long) WRITES.getAcquire(this);
        return ((after + 1) >>> 1) - 1 - first >= RING ? null : engines;
    }

    private static final int[] EMPTY = new int[0];
}
