package io.kvbroker.event;

import java.util.List;

/**
 * An engine stored one or more consecutive blocks of a chain, parent first.
 *
 * <p>Design note: hashes and tokens are primitive arrays so a block costs no boxed objects. The arrays belong to this
 * record and are never written after decoding; callers must not modify them either. Hashes are the engine's 64-bit
 * values (the last 8 bytes of its digest), held in a {@code long} as unsigned bits.
 *
 * @param blockHashes engine hashes of the stored blocks, parent first; never empty
 * @param hasParent whether {@code parentHash} is set (false for the first block of a chain and for offload stores)
 * @param parentHash engine hash of the block before {@code blockHashes[0]}, when {@code hasParent}
 * @param tokenIds every token of every block, flattened; empty for the offloading connector's token-less stores
 * @param blockSize tokens per block as sent (0 for token-less stores; may be partial with report mode "full")
 * @param loraId deprecated engine-local adapter id, or {@link KvEvent#ABSENT}; never enters content keys
 * @param medium where the blocks are held
 * @param loraName adapter name, or null
 * @param extraKeys per block, what the engine mixed into its hash (null entries for none), or null when not sent.
 *     Values are String, Long, Double, Boolean, byte[] or nested lists of those.
 * @param groupIdx KV-cache group, or {@link KvEvent#ABSENT}
 * @param kind the group's kind as sent, or as earlier stores of the engine taught when not sent
 * @param slidingWindow the group's sliding window in tokens, or {@link KvEvent#ABSENT}
 * @param locality newer releases: where the tier lives, or null
 * @param ownership newer releases, or null
 * @param sessionId newer releases, or null
 */
public record BlockStored(
        long[] blockHashes,
        boolean hasParent,
        long parentHash,
        int[] tokenIds,
        int blockSize,
        int loraId,
        Medium medium,
        String loraName,
        List<Object> extraKeys,
        int groupIdx,
        GroupKind kind,
        int slidingWindow,
        String locality,
        String ownership,
        String sessionId) implements KvEvent {

    /** Whether this is the offloading connector's announcement of a block it holds without tokens. */
    public boolean tokenless() {
        return tokenIds.length == 0;
    }
}
