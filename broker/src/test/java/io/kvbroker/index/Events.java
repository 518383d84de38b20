package io.kvbroker.index;

import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.util.List;

/** Builds engine events for index tests. */
public final class Events {
    private Events() {
    }

    public static KvEventBatch batch(KvEvent... events) {
        return new KvEventBatch(0, 0, List.of(events), 0, 0);
    }

    /** A GPU full-attention store of consecutive blocks; {@code parent} null for a chain's first block. */
    public static BlockStored stored(long[] hashes, Long parent, int[] tokens, int blockSize, Medium medium, String lora,
            List<Object> extra, GroupKind kind) {
        return new BlockStored(hashes, parent != null, parent == null ? 0 : parent, tokens, blockSize,
                lora == null ? KvEvent.ABSENT : 1, medium, lora, extra, kind == GroupKind.SLIDING_WINDOW ? 1 : 0,
                kind, KvEvent.ABSENT, null, null, null);
    }

    public static BlockStored gpu(long[] hashes, Long parent, int[] tokens) {
        return stored(hashes, parent, tokens, tokens.length / hashes.length, Medium.GPU, null, null,
                GroupKind.FULL_ATTENTION);
    }

    /** The offloading connector's token-less store. */
    public static BlockStored offloaded(long hash, Medium medium) {
        return new BlockStored(new long[] {hash}, false, 0, new int[0], 0, KvEvent.ABSENT, medium, null, null, 0,
                GroupKind.UNSPECIFIED, KvEvent.ABSENT, "local", null, null);
    }

    public static BlockRemoved removed(long hash, Medium medium, GroupKind kind) {
        return new BlockRemoved(new long[] {hash}, medium, kind == GroupKind.SLIDING_WINDOW ? 1 : 0, kind, null, null);
    }

    public static AllBlocksCleared cleared(Medium medium) {
        return new AllBlocksCleared(medium);
    }

    public static int[] tokens(int from, int count) {
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) {
            tokens[i] = from + i;
        }
        return tokens;
    }
}
