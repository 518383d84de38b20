package io.kvbroker.event;

/**
 * An engine evicted blocks from one medium.
 *
 * @param blockHashes engine hashes of the evicted blocks; never empty
 * @param medium the medium they were evicted from
 * @param groupIdx KV-cache group, or {@link KvEvent#ABSENT}
 * @param kind the group's kind as the engine's stores taught it; {@link GroupKind#UNKNOWN} if none has
 * @param locality newer releases, or null
 * @param ownership newer releases, or null
 */
public record BlockRemoved(
        long[] blockHashes,
        Medium medium,
        int groupIdx,
        GroupKind kind,
        String locality,
        String ownership) implements KvEvent {
}
