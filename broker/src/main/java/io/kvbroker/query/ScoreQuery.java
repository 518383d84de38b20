package io.kvbroker.query;

/**
 * A validated Score: a prompt as token ids or as content keys (exactly one is non-null).
 *
 * @param loraName the adapter, or null for the base model
 * @param engineFilter the engines to score, or null for all
 * @param topK most rows (0: all)
 * @param minTokens fewest matched tokens for a row
 */
public record ScoreQuery(String model, String loraName, int[] tokens, long[] keys, int[] engineFilter, int topK,
        int minTokens) {
}
