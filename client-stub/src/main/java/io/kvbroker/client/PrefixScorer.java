package io.kvbroker.client;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Scores a prompt's chunk keys against a {@link ResidencyView}: per engine, the leading run of blocks on GPU, then
 * the run right after it of blocks held on any other medium, weighted by medium.
 *
 * <p>Design note: one pass over the prompt's keys visits each key's holders once; an engine extends its match only
 * with a block that starts right where its match ends, so blocks of any span (16-token GPU blocks, 256-token offload
 * chunks) score on one chain. The pass stops once no engine has been extended for longer than the largest span. Not
 * thread-safe (reused per-engine arrays): one scorer per thread.
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
    private int[] end = new int[0];
    private int[] gpuEnd = new int[0];
    private double[] offloadScore = new double[0];
    private int[] touched = new int[0];
    private boolean[] allowed;
    private int touchedCount;

    public PrefixScorer(Weights weights) {
        this.weights = weights;
    }

    /**
     * Scores the prompt whose chunk keys are {@code keys} (use {@link #chunksToScore} to cap a token prompt).
     *
     * @param engines the engines to consider, or null for all
     * @param topK the best this many engines by score, or 0 for all with a match
     * @param minTokens engines matching fewer tokens are left out
     * @return matching engines, best score first, then lower engine id
     */
    public List<PrefixScore> score(long[] keys, int chunks, int granularity, ResidencyView view, int[] engines,
            int topK, int minTokens) {
        prepare(view.engineIdBound(), engines);
        int maxSpan = Math.max(1, view.maxSpan());
        int[] lastExtended = {0};
        for (int j = 1; j <= chunks; j++) {
            int chunk = j;
            view.forEachHolder(keys[j - 1], (engineId, span, media) -> {
                if (engineId >= end.length || (allowed != null && !allowed[engineId])) {
                    return;
                }
                // A block extends the match only if it starts right after what the engine matched so far.
                if (chunk - span != end[engineId]) {
                    return;
                }
                if (end[engineId] == 0 && gpuEnd[engineId] == 0) {
                    touched[touchedCount++] = engineId;
                }
                if ((media & Media.GPU) != 0 && gpuEnd[engineId] == end[engineId]) {
                    gpuEnd[engineId] = chunk;
                } else {
                    offloadScore[engineId] += span * granularity * weights.best(media);
                }
                end[engineId] = chunk;
                lastExtended[0] = chunk;
            });
            if (j - lastExtended[0] >= maxSpan) {
                break;
            }
        }
        List<PrefixScore> results = new ArrayList<>(touchedCount);
        for (int i = 0; i < touchedCount; i++) {
            int e = touched[i];
            int gpuTokens = gpuEnd[e] * granularity;
            int offloadTokens = (end[e] - gpuEnd[e]) * granularity;
            if (gpuTokens + offloadTokens >= Math.max(1, minTokens)) {
                results.add(new PrefixScore(e, gpuEnd[e], end[e] - gpuEnd[e], gpuTokens, offloadTokens,
                        gpuTokens * weights.gpu() + offloadScore[e]));
            }
        }
        results.sort(Comparator.comparingDouble(PrefixScore::score).reversed()
                .thenComparingInt(PrefixScore::engineId));
        return topK > 0 && results.size() > topK ? List.copyOf(results.subList(0, topK)) : results;
    }

    /**
     * The chunks of an n-token prompt that can score: an engine recomputes the last prompt token, so a match stops at
     * {@code floor((n - 1) / g)} blocks; a trailing partial chunk never counts.
     */
    public static int chunksToScore(int promptTokens, int granularity) {
        return promptTokens <= 0 ? 0 : (promptTokens - 1) / granularity;
    }

    private void prepare(int bound, int[] engines) {
        if (end.length < bound) {
            end = new int[bound];
            gpuEnd = new int[bound];
            offloadScore = new double[bound];
            touched = new int[bound];
        } else {
            for (int i = 0; i < touchedCount; i++) {
                int e = touched[i];
                end[e] = 0;
                gpuEnd[e] = 0;
                offloadScore[e] = 0;
            }
        }
        touchedCount = 0;
        if (engines == null) {
            allowed = null;
        } else {
            allowed = new boolean[bound];
            for (int e : engines) {
                if (e >= 0 && e < bound) {
                    allowed[e] = true;
                }
            }
        }
    }
}
