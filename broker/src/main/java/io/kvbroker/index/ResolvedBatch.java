package io.kvbroker.index;

import java.util.List;

/**
 * One applied batch as the index resolved it: what the journal logs and recovery replays, with content keys in place
 * of token ids, and only what the index applies (full-attention groups).
 *
 * <p>Design note: replaying a resolved batch runs the same code as the batch did ({@link BlockIndex#applyResolved}),
 * taking the keys instead of hashing tokens, so an engine restored from its checkpoint and its later batches is the
 * engine as it was, evictions included. The evictions a batch caused are listed too, for readers of the log; replay
 * recomputes them rather than trusting the list.
 *
 * @param changes in the order applied
 * @param holdings what the batch changed in the holder table (what Watch streams); {@link HoldingChanges#NONE} when
 *     not recorded
 */
public record ResolvedBatch(List<Change> changes, HoldingChanges holdings) {

    public ResolvedBatch(List<Change> changes) {
        this(changes, HoldingChanges.NONE);
    }

    /** An engine's reset: every medium cleared, every holding dropped. */
    public static ResolvedBatch reset() {
        return new ResolvedBatch(List.of(new Clear(io.kvbroker.core.Media.ALL)),
                new HoldingChanges(true, new long[0], new int[0]));
    }

    /** One change. Media are {@link io.kvbroker.core.Media} bits. */
    public sealed interface Change permits Store, Remove, Clear, Evict {
    }

    /**
     * Blocks stored. {@code keys[b]} is the key block {@code b} was recorded under, or 0 if it got none (orphan or
     * unkeyable); null for a token-less offload store, which only adds a medium to blocks already known.
     *
     * @param span chunks each block spans; 0 if the blocks could not be keyed
     */
    public record Store(long[] hashes, boolean hasParent, long parentHash, int span, long[] keys, int medium)
            implements Change {
        public boolean tokenless() {
            return keys == null;
        }
    }

    /** Blocks removed from one medium. */
    public record Remove(long[] hashes, int medium) implements Change {
    }

    /** Every block removed from the given media ({@link io.kvbroker.core.Media#ALL}: the engine cleared). */
    public record Clear(int media) implements Change {
    }

    /** Blocks the index evicted for the engine's quota, with the keys they were indexed under. */
    public record Evict(long[] hashes, long[] keys) implements Change {
    }
}
