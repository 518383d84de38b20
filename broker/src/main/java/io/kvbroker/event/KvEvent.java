package io.kvbroker.event;

/**
 * One change to an engine's KV cache, as the engine announced it.
 *
 * <p>Design note: events carry engine-local hashes only; content keys of our own are computed later by the index,
 * so nothing here depends on reproducing the engine's hash seed.
 */
public sealed interface KvEvent permits BlockStored, BlockRemoved, AllBlocksCleared {

    /** Marks an absent optional integer field (lora_id, group_idx, sliding window); real values are never negative. */
    int ABSENT = -1;
}
