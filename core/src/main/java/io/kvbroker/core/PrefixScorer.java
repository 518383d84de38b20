package io.kvbroker.core;

import java.util.Arrays;
import java.util.List;

/**
 * Scores a prompt's chunk keys against a {@link HolderTable}: per engine, the leading run of blocks on GPU, then the
 * run right after it of blocks held on any medium, each weighted by its best medium.
 *
 * <p>Design note: two kinds of engine are followed chunk by chunk. Engines still in a run of span-1 GPU-only blocks
 * from the first chunk are a bitset, advanced by one AND with each key's engine set: a prefix shared by a thousand
 * engines costs a few words per chunk, not a thousand lookups. Every other engine (its run used a larger block or an
 * offloaded one) is on a small frontier and extends only with a block that starts right where its match ends, so
 * blocks of any span score on one chain. The pass stops once nothing has been extended for longer than the largest
 * span. Not thread-safe (reused arrays): one scorer per thread.
 */
public final class PrefixScorer {

    /** Medium weights: GPU above CPU above storage. */
    public record Weights(double gpu, double cpu, double storage, double other) {
        public static final Weights DEFAULT = new Weights(1.0, 0.8, 0.5, 0.4);

        double best(int media) {
            if ((media & Media.GPU) != 0) {
                return gpu;
            }
            if ((media & Media.CPU) != 0) {
                return cpu;
            }
            if ((media & Media.STORAGE) != 0) {
                return storage;
            }
            return other;
        }
    }

    private final Weights weights;
    private int granularity;
    private int[] end = new int[0];
    private int[] gpuEnd = new int[0];
    private int[] extendedAt = new int[0];
    private double[] offloadScore = new double[0];
    private boolean[] seen = new boolean[0];
    private int[] touched = new int[0];
    private int touchedCount;
    private long[] alive = new long[0];
    private long[] next = new long[0];
    private long[] allowed;
    private double[] finalScore = new double[0];
    private int[] heap = new int[0];
    private int[] frontier = new int[0];
    private int frontierCount;
    private int[] newFrontier = new int[0];
    private int newFrontierCount;
    private int lastExtended;
    /** Engines extended outside the bitset phase in this call; none means the touched list is in score order. */
    private int frontierExtensions;

    public PrefixScorer(Weights weights) {
        this.weights = weights;
    }

    /**
     * Scores the first {@code chunks} of {@code keys} (use {@link #chunksToScore} to cap a token prompt).
     *
     * @param engines the engines to consider, or null for all
     * @param topK the best this many engines by score, or 0 for all with a match
     * @param minTokens engines matching fewer tokens are left out
     * @return matching engines, best score first, then lower engine id
     */
    public List<PrefixScore> score(long[] keys, int chunks, int granularity, HolderTable table, int[] engines,
            int topK, int minTokens) {
        return walk(keys, null, 0, null, chunks, granularity, table, engines, topK, minTokens);
    }

    /**
     * Scores a prompt given as tokens, computing each chunk's key only when the walk reaches it: a prompt whose tail
     * no engine holds never has that tail hashed.
     *
     * @param root the key before the first chunk ({@link ContentKeys#root})
     * @param chunks chunks to score, at most {@link #chunksToScore}
     */
    public List<PrefixScore> score(ContentKeys contentKeys, long root, int[] tokens, int chunks, HolderTable table,
            int[] engines, int topK, int minTokens) {
        return walk(null, contentKeys, root, tokens, chunks, contentKeys.granularity(), table, engines, topK,
                minTokens);
    }

    private List<PrefixScore> walk(long[] keys, ContentKeys contentKeys, long root, int[] tokens, int chunks,
            int granularity, HolderTable table, int[] engines, int topK, int minTokens) {
        this.granularity = granularity;
        long chain = root;
        int words = prepare(table.engineIdBound(), engines);
        int maxSpan = Math.max(1, table.maxSpan());
        boolean aliveAny = false;
        int processed = 0;
        for (int j = 1; j <= chunks; j++) {
            long key;
            if (keys != null) {
                key = keys[j - 1];
            } else {
                chain = contentKeys.chunk(chain, tokens, (j - 1) * granularity, null);
                key = chain;
            }
            int value;
            HolderTable.Multi m;
            do {
                value = table.lookup(key);
                m = value <= -2 ? table.multiAt(value, key) : null;
            } while (value <= -2 && m == null);
            int single = value >= 0 ? value : HolderTable.NONE;
            boolean singleGpu1 = single != HolderTable.NONE
                    && HolderTable.pureGpu1(HolderTable.spanOf(single), HolderTable.mediaOf(single));
            // 1. Engines in a GPU-only span-1 run since chunk 1: one AND per word; those that drop out end at j - 1.
            if (j == 1) {
                gpuSet(m, singleGpu1 ? HolderTable.engineOf(single) : -1, alive, words);
                if (allowed != null) {
                    for (int w = 0; w < words; w++) {
                        alive[w] &= allowed[w];
                    }
                }
                aliveAny = any(alive, words);
            } else if (aliveAny) {
                if (m != null && m.gpuDense != null) {
                    long[] dense = m.gpuDense;
                    for (int w = 0; w < words; w++) {
                        next[w] = alive[w] & (w < dense.length ? dense[w] : 0);
                    }
                } else {
                    Arrays.fill(next, 0, words, 0);
                    if (m != null) {
                        for (int i = 0; i < m.gpuCount; i++) {
                            copyBit(m.gpuSparse[i]);
                        }
                    } else if (singleGpu1) {
                        copyBit(HolderTable.engineOf(single));
                    }
                }
                aliveAny = false;
                for (int w = 0; w < words; w++) {
                    long dropped = alive[w] & ~next[w];
                    while (dropped != 0) {
                        int e = w << 6 | Long.numberOfTrailingZeros(dropped);
                        touch(e);
                        end[e] = j - 1;
                        gpuEnd[e] = j - 1;
                        dropped &= dropped - 1;
                    }
                    aliveAny |= next[w] != 0;
                }
                long[] swap = alive;
                alive = next;
                next = swap;
            }
            if (aliveAny) {
                lastExtended = j;
            }
            // 2. Holders of any other kind: larger blocks, offloaded blocks.
            newFrontierCount = 0;
            if (m != null) {
                for (int i = 0; i < m.othersCount; i++) {
                    int h = m.others[i];
                    extend(HolderTable.engineOf(h), HolderTable.spanOf(h), HolderTable.mediaOf(h), j);
                }
            } else if (single != HolderTable.NONE && !singleGpu1) {
                extend(HolderTable.engineOf(single), HolderTable.spanOf(single), HolderTable.mediaOf(single), j);
            }
            // 3. Frontier engines (extended at j - 1, outside the bitset) continuing with a span-1 GPU-only block.
            for (int i = 0; i < frontierCount; i++) {
                int e = frontier[i];
                if (extendedAt[e] != j && (m != null ? m.hasGpu1(e) : singleGpu1 && HolderTable.engineOf(single) == e)) {
                    extend(e, 1, Media.GPU, j);
                }
            }
            int[] swap = frontier;
            frontier = newFrontier;
            newFrontier = swap;
            frontierCount = newFrontierCount;
            processed = j;
            if (!aliveAny && frontierCount == 0 && j - lastExtended >= maxSpan) {
                break;
            }
        }
        for (int w = 0; w < words && aliveAny; w++) {
            long bits = alive[w];
            while (bits != 0) {
                int e = w << 6 | Long.numberOfTrailingZeros(bits);
                touch(e);
                end[e] = processed;
                gpuEnd[e] = processed;
                bits &= bits - 1;
            }
        }
        return results(topK, minTokens);
    }

    /** Extends engine {@code e} by a block of {@code span} chunks ending at chunk {@code j}, if it starts right there. */
    private void extend(int e, int span, int media, int j) {
        if (e >= seen.length || (allowed != null && (allowed[e >>> 6] & (1L << e)) == 0) || extendedAt[e] == j
                || (alive[e >>> 6] & (1L << e)) != 0 || j - span != end[e]) {
            return;
        }
        touch(e);
        if ((media & Media.GPU) != 0 && gpuEnd[e] == end[e]) {
            gpuEnd[e] = j;
        } else {
            offloadScore[e] += span * granularity * weights.best(media);
        }
        end[e] = j;
        extendedAt[e] = j;
        newFrontier[newFrontierCount++] = e;
        lastExtended = j;
        frontierExtensions++;
    }

    private void touch(int e) {
        if (!seen[e]) {
            seen[e] = true;
            touched[touchedCount++] = e;
        }
    }

    private void copyBit(int e) {
        int w = e >>> 6;
        if ((alive[w] & (1L << e)) != 0) {
            next[w] |= 1L << e;
        }
    }

    /** Fills {@code into} with the key's engines holding a span-1 GPU-only block. */
    private static void gpuSet(HolderTable.Multi m, int singleEngine, long[] into, int words) {
        Arrays.fill(into, 0, words, 0);
        if (m != null && m.gpuDense != null) {
            System.arraycopy(m.gpuDense, 0, into, 0, Math.min(words, m.gpuDense.length));
        } else if (m != null) {
            for (int i = 0; i < m.gpuCount; i++) {
                into[m.gpuSparse[i] >>> 6] |= 1L << m.gpuSparse[i];
            }
        } else if (singleEngine >= 0) {
            into[singleEngine >>> 6] |= 1L << singleEngine;
        }
    }

    private static boolean any(long[] bits, int words) {
        for (int w = 0; w < words; w++) {
            if (bits[w] != 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * The qualifying engines, best first. With a top_k only that many records are built: a bounded min-heap of
     * engine ids by score picks them, so a prefix matched by a thousand engines does not sort a thousand objects.
     */
    /**
     * The fewest chunks a row needs to reach {@code minTokens}, at least one. Rounded up without overflow: a request's
     * min_tokens of 2^32-1 arrives saturated at Integer.MAX_VALUE and must leave every engine out, not wrap round.
     */
    private int minChunks(int minTokens) {
        return Math.max(1, minTokens / granularity + (minTokens % granularity == 0 ? 0 : 1));
    }

    private List<PrefixScore> results(int topK, int minTokens) {
        if (frontierExtensions == 0 && weights.gpu() > 0) {
            return pureGpuResults(topK, minTokens);
        }
        int limit = topK > 0 ? Math.min(topK, touchedCount) : touchedCount;
        int minChunks = minChunks(minTokens);
        double gpuWeight = granularity * weights.gpu();
        int heapSize = 0;
        double worst = Double.NEGATIVE_INFINITY;
        int worstId = -1;
        for (int i = 0; i < touchedCount; i++) {
            int e = touched[i];
            if (end[e] < minChunks) {
                continue;
            }
            double score = gpuEnd[e] * gpuWeight + offloadScore[e];
            if (heapSize < limit) {
                finalScore[e] = score;
                heap[heapSize] = e;
                siftUp(heapSize++);
            } else if (score > worst || (score == worst && e < worstId)) {
                finalScore[e] = score;
                heap[0] = e;
                siftDown(0, heapSize);
            } else {
                continue;
            }
            if (heapSize == limit) {
                worstId = heap[0];
                worst = finalScore[worstId];
            }
        }
        PrefixScore[] ordered = new PrefixScore[heapSize];
        for (int n = heapSize; n > 0; n--) {
            int e = heap[0];
            heap[0] = heap[n - 1];
            siftDown(0, n - 1);
            ordered[n - 1] = new PrefixScore(e, gpuEnd[e], end[e] - gpuEnd[e], gpuEnd[e] * granularity,
                    (end[e] - gpuEnd[e]) * granularity, finalScore[e]);
        }
        return Arrays.asList(ordered);
    }

    /**
     * The fast path when every match is a pure GPU run followed in the bitset: engines were touched as they dropped
     * out, chunk by chunk, and the survivors last, each group in ascending engine id; a run's score grows with its
     * length. So the best are the touched list's last groups, read backwards group by group, each group in order.
     */
    private List<PrefixScore> pureGpuResults(int topK, int minTokens) {
        int minChunks = minChunks(minTokens);
        int limit = topK > 0 ? topK : touchedCount;
        List<PrefixScore> results = new java.util.ArrayList<>(Math.min(limit, touchedCount));
        int groupEnd = touchedCount;
        while (groupEnd > 0 && results.size() < limit) {
            int chunks = end[touched[groupEnd - 1]];
            if (chunks < minChunks) {
                break;
            }
            int groupStart = groupEnd - 1;
            while (groupStart > 0 && end[touched[groupStart - 1]] == chunks) {
                groupStart--;
            }
            for (int i = groupStart; i < groupEnd && results.size() < limit; i++) {
                int e = touched[i];
                results.add(new PrefixScore(e, chunks, 0, chunks * granularity, 0,
                        chunks * granularity * weights.gpu()));
            }
            groupEnd = groupStart;
        }
        return results;
    }

    /** Higher score first, then lower engine id. */
    private boolean better(int a, int b) {
        return finalScore[a] > finalScore[b] || (finalScore[a] == finalScore[b] && a < b);
    }

    private void siftUp(int i) {
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (!better(heap[parent], heap[i])) {
                break;
            }
            int swap = heap[parent];
            heap[parent] = heap[i];
            heap[i] = swap;
            i = parent;
        }
    }

    private void siftDown(int i, int size) {
        while (true) {
            int worst = i;
            int left = 2 * i + 1;
            int right = left + 1;
            if (left < size && better(heap[worst], heap[left])) {
                worst = left;
            }
            if (right < size && better(heap[worst], heap[right])) {
                worst = right;
            }
            if (worst == i) {
                return;
            }
            int swap = heap[worst];
            heap[worst] = heap[i];
            heap[i] = swap;
            i = worst;
        }
    }

    /**
     * The chunks of an n-token prompt that can score: an engine recomputes the last prompt token, so a match stops at
     * {@code floor((n - 1) / g)} blocks; a trailing partial chunk never counts.
     */
    public static int chunksToScore(int promptTokens, int granularity) {
        return promptTokens <= 0 ? 0 : (promptTokens - 1) / granularity;
    }

    /** Sizes and resets the per-engine arrays for engine ids below {@code bound}; returns the bitset word count. */
    private int prepare(int bound, int[] engines) {
        int words = (bound + 63) >>> 6;
        if (end.length < bound) {
            int size = words << 6;
            end = new int[size];
            gpuEnd = new int[size];
            extendedAt = new int[size];
            offloadScore = new double[size];
            seen = new boolean[size];
            touched = new int[size];
            finalScore = new double[size];
            heap = new int[size];
            frontier = new int[size];
            newFrontier = new int[size];
            alive = new long[words];
            next = new long[words];
        } else {
            for (int i = 0; i < touchedCount; i++) {
                int e = touched[i];
                end[e] = 0;
                gpuEnd[e] = 0;
                extendedAt[e] = 0;
                offloadScore[e] = 0;
                seen[e] = false;
            }
        }
        touchedCount = 0;
        frontierCount = 0;
        lastExtended = 0;
        frontierExtensions = 0;
        Arrays.fill(alive, 0);
        if (engines == null) {
            allowed = null;
        } else {
            allowed = new long[Math.max(1, words)];
            for (int e : engines) {
                if (e >= 0 && e < bound) {
                    allowed[e >>> 6] |= 1L << e;
                }
            }
        }
        return words;
    }
}
