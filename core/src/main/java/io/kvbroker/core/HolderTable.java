package io.kvbroker.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * For every content key, the engines holding a block recorded under it, laid out for Score: engines holding a span-1
 * block on GPU alone (the common case) as an engine set, sparse or a bitset, and every other holder packed in an int.
 *
 * <p>Design note: a key with one holder costs one entry of a primitive map; a key held by many engines becomes a
 * bitset, so {@link PrefixScorer} walks a shared prefix with a few AND operations per chunk instead of a cache miss
 * per holder. At most one holder per (key, engine): callers keep a second block of one engine with the same content
 * out.
 *
 * <p>Concurrency: one writer; readers on other threads never block it and never see a torn entry. A key with several
 * holders is an immutable {@link Multi}: every change builds a new one and publishes it with release, and a reader
 * that finds a multi's slot reused for another key looks the key up again ({@link #multiAt(int, long)}). A reader can
 * therefore see a holder of an engine only as it was before or after the writer's change of that engine's holding;
 * the index tells, per engine, which of its writes a read overlapped.
 */
public final class HolderTable {
    static final int NONE = -1;

    /** Receives one holder of a key. */
    @FunctionalInterface
    public interface HolderVisitor {
        /**
         * @param engineId the holding engine
         * @param span chunks the held block covers, ending at the visited key
         * @param media the {@link Media} bits it is held on
         */
        void holder(int engineId, int span, int media);
    }
    /** Sparse engine sets grow into bitsets above this size and shrink back below a quarter of it. */
    static final int DENSE_AT = 32;

    /** One holder packed in an int: engine id (19 bits), span (8 bits), media (4 bits). */
    static int pack(int engineId, int span, int media) {
        return engineId << 12 | (span & 0xFF) << 4 | (media & 0xF);
    }

    static int engineOf(int holder) {
        return holder >>> 12;
    }

    static int spanOf(int holder) {
        return (holder >>> 4) & 0xFF;
    }

    static int mediaOf(int holder) {
        return holder & 0xF;
    }

    static boolean pureGpu1(int span, int media) {
        return span == 1 && media == Media.GPU;
    }

    /** A key with two or more holders: built by the writer, never changed once published. */
    static final class Multi {
        /** The key, so that a reader holding a stale reference to a reused slot can tell. */
        final long key;
        /** Engines holding a span-1 GPU-only block: sparse ids while small ({@code gpuDense == null}). */
        int[] gpuSparse = new int[4];
        long[] gpuDense;
        int gpuCount;
        /** Every other holder, packed. */
        int[] others = new int[2];
        int othersCount;

        Multi(long key) {
            this.key = key;
        }

        /** A private copy for the writer to change before publishing it in this one's place. */
        Multi copy() {
            Multi m = new Multi(key);
            m.gpuSparse = gpuSparse == null ? null : gpuSparse.clone();
            m.gpuDense = gpuDense == null ? null : gpuDense.clone();
            m.gpuCount = gpuCount;
            m.others = others.clone();
            m.othersCount = othersCount;
            return m;
        }

        int size() {
            return gpuCount + othersCount;
        }

        boolean hasGpu1(int engineId) {
            if (gpuDense != null) {
                int word = engineId >>> 6;
                return word < gpuDense.length && (gpuDense[word] & (1L << engineId)) != 0;
            }
            for (int i = 0; i < gpuCount; i++) {
                if (gpuSparse[i] == engineId) {
                    return true;
                }
            }
            return false;
        }
    }

    // One primitive map for every key (client-stub has no dependencies, so the table is our own): a value >= 0 is
    // the key's single packed holder; a value <= -2 is -(index + 2) into multis, for keys with several holders.
    private static final VarHandle MULTIS = MethodHandles.arrayElementVarHandle(Multi[].class);
    private final LongIntTable table = new LongIntTable();
    private volatile Multi[] multis = new Multi[16];
    private int[] freeMultis = new int[16];
    private int freeCount;
    private int multiCount;
    private volatile int maxSpan = 1;
    private volatile int engineIdBound;

    /** Records that {@code engineId} holds a block of {@code span} chunks on {@code media} under {@code key}. */
    public void add(long key, int engineId, int span, int media) {
        // Volatile, so written only when they grow.
        if (span > maxSpan) {
            maxSpan = span;
        }
        if (engineId >= engineIdBound) {
            engineIdBound = engineId + 1;
        }
        int value = table.get(key);
        if (value == NONE) {
            table.put(key, pack(engineId, span, media));
            return;
        }
        if (value >= 0) {
            Multi m = new Multi(key);
            insert(m, value);
            insert(m, pack(engineId, span, media));
            // Published before the table points at it.
            table.put(key, -(store(m) + 2));
        } else {
            int index = -value - 2;
            Multi m = multis[index].copy();
            insert(m, pack(engineId, span, media));
            MULTIS.setRelease(multis, index, m);
        }
    }

    /** Whether {@code engineId} holds a block under {@code key}. */
    public boolean holds(long key, int engineId) {
        Multi m = multiOf(key);
        if (m == null) {
            int h = singleOf(key);
            return h != NONE && engineOf(h) == engineId;
        }
        if (m.hasGpu1(engineId)) {
            return true;
        }
        for (int i = 0; i < m.othersCount; i++) {
            if (engineOf(m.others[i]) == engineId) {
                return true;
            }
        }
        return false;
    }

    /** Forgets {@code engineId}'s holding of {@code key}, if any. */
    public void remove(long key, int engineId) {
        int value = table.get(key);
        if (value == NONE) {
            return;
        }
        if (value >= 0) {
            if (engineOf(value) == engineId) {
                table.remove(key);
            }
            return;
        }
        int index = -value - 2;
        Multi m = multis[index].copy();
        delete(m, engineId);
        if (m.size() == 1) {
            table.put(key, m.gpuCount == 1 ? pack(firstGpu(m), 1, Media.GPU) : m.others[0]);
            release(index);
        } else if (m.size() == 0) {
            table.remove(key);
            release(index);
        } else {
            MULTIS.setRelease(multis, index, m);
        }
    }

    /** Changes a holding's span or media (a medium added or evicted while another still holds the block). */
    public void update(long key, int engineId, int span, int media) {
        int value = table.get(key);
        if (value >= 0 && engineOf(value) == engineId) {
            table.put(key, pack(engineId, span, media));
        } else if (value <= -2) {
            // One new multi for both steps, so readers never see the other holders reshuffled in between.
            int index = -value - 2;
            Multi m = multis[index].copy();
            delete(m, engineId);
            insert(m, pack(engineId, span, media));
            MULTIS.setRelease(multis, index, m);
        } else {
            add(key, engineId, span, media);
        }
    }

    /** Visits every holder of {@code key}. */
    public void forEachHolder(long key, HolderVisitor visitor) {
        int value;
        Multi m;
        do {
            value = table.get(key);
            m = value <= -2 ? multiAt(value, key) : null;
        } while (value <= -2 && m == null);
        if (m == null) {
            int h = value;
            if (h != NONE) {
                visitor.holder(engineOf(h), spanOf(h), mediaOf(h));
            }
            return;
        }
        if (m.gpuDense != null) {
            for (int w = 0; w < m.gpuDense.length; w++) {
                long bits = m.gpuDense[w];
                while (bits != 0) {
                    visitor.holder(w << 6 | Long.numberOfTrailingZeros(bits), 1, Media.GPU);
                    bits &= bits - 1;
                }
            }
        } else {
            for (int i = 0; i < m.gpuCount; i++) {
                visitor.holder(m.gpuSparse[i], 1, Media.GPU);
            }
        }
        for (int i = 0; i < m.othersCount; i++) {
            int h = m.others[i];
            visitor.holder(engineOf(h), spanOf(h), mediaOf(h));
        }
    }

    /** Distinct keys with at least one holder. */
    public long keys() {
        return table.size();
    }

    public int maxSpan() {
        return maxSpan;
    }

    public int engineIdBound() {
        return engineIdBound;
    }

    /** Approximate heap bytes of the table. */
    public long memoryBytes() {
        long bytes = table.memoryBytes() + 8L * multis.length + 4L * freeMultis.length;
        for (int i = 0; i < multiCount; i++) {
            Multi m = multis[i];
            if (m != null) {
                bytes += 48 + (m.gpuDense != null ? 16 + 8L * m.gpuDense.length : 16 + 4L * m.gpuSparse.length)
                        + 16 + 4L * m.others.length;
            }
        }
        return bytes;
    }

    // ---- for PrefixScorer ----

    /**
     * The raw table value of {@code key}: {@link #NONE}, a packed single holder (>= 0), or a multi reference (<= -2,
     * see {@link #multiAt}). One lookup per chunk for the scorer.
     */
    int lookup(long key) {
        return table.get(key);
    }

    /**
     * The multi a table value of {@code key} points to, or null when its slot was released and reused meanwhile (the
     * reader then looks the key up again).
     */
    Multi multiAt(int value, long key) {
        Multi[] all = multis;
        int index = -value - 2;
        Multi m = index < all.length ? (Multi) MULTIS.getAcquire(all, index) : null;
        return m != null && m.key == key ? m : null;
    }

    /** The packed single holder of {@code key}, or {@link #NONE} (also when the key has several holders). */
    int singleOf(long key) {
        int value = table.get(key);
        return value >= 0 ? value : NONE;
    }

    /** The writer's view of a key's multi, or null. */
    Multi multiOf(long key) {
        int value = table.get(key);
        return value <= -2 ? multis[-value - 2] : null;
    }

    private int store(Multi m) {
        int index;
        if (freeCount > 0) {
            index = freeMultis[--freeCount];
        } else {
            if (multiCount == multis.length) {
                multis = Arrays.copyOf(multis, multis.length * 2);
            }
            index = multiCount++;
        }
        MULTIS.setRelease(multis, index, m);
        return index;
    }

    private void release(int index) {
        MULTIS.setRelease(multis, index, (Multi) null);
        if (freeCount == freeMultis.length) {
            freeMultis = Arrays.copyOf(freeMultis, freeMultis.length * 2);
        }
        freeMultis[freeCount++] = index;
    }

    // ---- internals ----

    private void insert(Multi m, int holder) {
        int engineId = engineOf(holder);
        if (pureGpu1(spanOf(holder), mediaOf(holder))) {
            if (m.gpuDense != null) {
                int word = engineId >>> 6;
                if (word >= m.gpuDense.length) {
                    m.gpuDense = Arrays.copyOf(m.gpuDense, Math.max(word + 1, m.gpuDense.length * 2));
                }
                m.gpuDense[word] |= 1L << engineId;
            } else {
                if (m.gpuCount == m.gpuSparse.length) {
                    m.gpuSparse = Arrays.copyOf(m.gpuSparse, m.gpuSparse.length * 2);
                }
                m.gpuSparse[m.gpuCount] = engineId;
                if (m.gpuCount + 1 > DENSE_AT) {
                    densify(m);
                }
            }
            m.gpuCount++;
        } else {
            if (m.othersCount == m.others.length) {
                m.others = Arrays.copyOf(m.others, m.others.length * 2);
            }
            m.others[m.othersCount++] = holder;
        }
    }

    private void delete(Multi m, int engineId) {
        if (m.hasGpu1(engineId)) {
            if (m.gpuDense != null) {
                m.gpuDense[engineId >>> 6] &= ~(1L << engineId);
                m.gpuCount--;
                if (m.gpuCount < DENSE_AT / 4) {
                    sparsify(m);
                }
            } else {
                for (int i = 0; i < m.gpuCount; i++) {
                    if (m.gpuSparse[i] == engineId) {
                        m.gpuSparse[i] = m.gpuSparse[--m.gpuCount];
                        break;
                    }
                }
            }
            return;
        }
        for (int i = 0; i < m.othersCount; i++) {
            if (engineOf(m.others[i]) == engineId) {
                m.others[i] = m.others[--m.othersCount];
                return;
            }
        }
    }

    private static void densify(Multi m) {
        int max = 0;
        for (int i = 0; i <= m.gpuCount; i++) {
            max = Math.max(max, m.gpuSparse[i]);
        }
        long[] dense = new long[(max >>> 6) + 1];
        for (int i = 0; i <= m.gpuCount; i++) {
            dense[m.gpuSparse[i] >>> 6] |= 1L << m.gpuSparse[i];
        }
        m.gpuDense = dense;
        m.gpuSparse = null;
    }

    private static void sparsify(Multi m) {
        int[] sparse = new int[Math.max(4, m.gpuCount * 2)];
        int n = 0;
        for (int w = 0; w < m.gpuDense.length; w++) {
            long bits = m.gpuDense[w];
            while (bits != 0) {
                sparse[n++] = w << 6 | Long.numberOfTrailingZeros(bits);
                bits &= bits - 1;
            }
        }
        m.gpuSparse = sparse;
        m.gpuDense = null;
    }

    private static int firstGpu(Multi m) {
        if (m.gpuDense == null) {
            return m.gpuSparse[0];
        }
        for (int w = 0; w < m.gpuDense.length; w++) {
            if (m.gpuDense[w] != 0) {
                return w << 6 | Long.numberOfTrailingZeros(m.gpuDense[w]);
            }
        }
        throw new IllegalStateException("empty engine set");
    }
}
