package io.kvbroker.index;

/**
 * The index's size and counters, read without stopping the writer (so a status figure, not a consistent cut).
 *
 * @param engines engines with state in the index
 * @param residencies blocks held, summed over engines (a block on two media counts once)
 * @param keys distinct content keys with at least one holder
 * @param memoryBytes estimated heap of the index structures
 * @param counts what the writer did
 */
public record IndexStats(int engines, long residencies, long keys, long memoryBytes, Counts counts) {

    /** Counters kept by the writer; readers copy them without a lock (each field is one write). */
    public static final class Counts {
        public long storedBlocks;
        public long removedBlocks;
        public long orphanBlocks;
        public long rerootedBlocks;
        public long unkeyableBlocks;
        public long skippedOtherGroups;
        public long unknownRemovals;
        public long clears;
        public long duplicateKeys;
        /** Blocks dropped from the index for their engine's quota. */
        public long evictedBlocks;
        /** Evicted blocks back in the index: announced again, or a prefix of a block stored since. */
        public long restoredBlocks;
        /** Evicted entries forgotten altogether, beyond the kept number. */
        public long forgottenBlocks;

        Counts copy() {
            Counts copy = new Counts();
            copy.storedBlocks = storedBlocks;
            copy.removedBlocks = removedBlocks;
            copy.orphanBlocks = orphanBlocks;
            copy.rerootedBlocks = rerootedBlocks;
            copy.unkeyableBlocks = unkeyableBlocks;
            copy.skippedOtherGroups = skippedOtherGroups;
            copy.unknownRemovals = unknownRemovals;
            copy.clears = clears;
            copy.duplicateKeys = duplicateKeys;
            copy.evictedBlocks = evictedBlocks;
            copy.restoredBlocks = restoredBlocks;
            copy.forgottenBlocks = forgottenBlocks;
            return copy;
        }
    }
}
