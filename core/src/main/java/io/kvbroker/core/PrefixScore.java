package io.kvbroker.core;

/**
 * How much of a prompt's prefix one engine can serve from cache.
 *
 * @param engineId the engine
 * @param gpuBlocks chunks of the leading run held on GPU
 * @param offloadBlocks chunks of the run right after it, held on any medium (at least one block off GPU)
 * @param gpuTokens {@code gpuBlocks} in tokens
 * @param offloadTokens {@code offloadBlocks} in tokens
 * @param score GPU tokens times the GPU weight plus each offloaded block's tokens times its best medium's weight
 */
public record PrefixScore(int engineId, int gpuBlocks, int offloadBlocks, int gpuTokens, int offloadTokens,
        double score) {

    public int totalTokens() {
        return gpuTokens + offloadTokens;
    }

    public int totalBlocks() {
        return gpuBlocks + offloadBlocks;
    }
}
