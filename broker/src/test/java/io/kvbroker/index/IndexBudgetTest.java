package io.kvbroker.index;

import static io.kvbroker.index.Events.batch;
import static io.kvbroker.index.Events.gpu;
import static io.kvbroker.index.Events.offloaded;
import static io.kvbroker.index.Events.removed;
import static io.kvbroker.index.Events.tokens;
import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.Medium;
import org.junit.jupiter.api.Test;

/** An engine over its quota loses chain tails, storage first, and its evicted blocks still resolve later events. */
class IndexBudgetTest {
    private static final int G = 16;
    private long sequence;

    private static BlockIndex index(long quotaBlocks) {
        return new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT, IndexBudget.ofQuota(quotaBlocks));
    }

    private void apply(BlockIndex index, KvEvent... events) {
        index.apply(0, 1, sequence++, batch(events));
    }

    private static boolean indexed(BlockIndex index, long hash) {
        return !index.lookupHashes(new long[] {hash}).get(0).isEmpty();
    }

    @Test
    void overQuotaEvictsStorageOnlyTailsThenCpuThenGpuAndNeverAParentOfIndexedBlocks() {
        BlockIndex index = index(4);
        apply(index, gpu(new long[] {1, 2, 3}, null, tokens(100, 3 * G)));
        // One batch (eviction runs at a batch's end): a block moved to CPU, another moved to storage.
        apply(index, gpu(new long[] {11}, null, tokens(500, G)), offloaded(11, Medium.CPU),
                removed(11, Medium.GPU, GroupKind.FULL_ATTENTION), gpu(new long[] {21}, null, tokens(900, G)),
                offloaded(21, Medium.STORAGE), removed(21, Medium.GPU, GroupKind.FULL_ATTENTION));
        // Five indexed, quota four: the storage-only block goes first.
        assertThat(indexed(index, 21)).isFalse();
        assertThat(indexed(index, 11)).isTrue();
        apply(index, gpu(new long[] {31}, null, tokens(1300, G)));
        // Then the CPU-only one.
        assertThat(indexed(index, 11)).isFalse();
        apply(index, gpu(new long[] {41}, null, tokens(1700, G)));
        // Then a GPU chain tail: never block 1 or 2, whose child stays indexed.
        assertThat(indexed(index, 1)).isTrue();
        assertThat(indexed(index, 2)).isTrue();
        assertThat(index.engineSummary(0).blocks()).isEqualTo(4);
        assertThat(index.engineSummary(0).evictedBlocks()).isEqualTo(3);
        assertThat(index.engineSummary(0).truncated()).isTrue();
        assertThat(index.stats().counts().evictedBlocks).isEqualTo(3);
    }

    @Test
    void evictedBlocksStillResolveRemovalsAndGoWhenTheEngineDropsThem() {
        BlockIndex index = index(1);
        apply(index, gpu(new long[] {1}, null, tokens(100, G)));
        apply(index, gpu(new long[] {2}, null, tokens(500, G)));
        long evicted = indexed(index, 1) ? 2 : 1;
        assertThat(index.engineSummary(0).evictedBlocks()).isEqualTo(1);
        apply(index, removed(evicted, Medium.GPU, GroupKind.FULL_ATTENTION));
        assertThat(index.stats().counts().unknownRemovals).isZero();
        assertThat(index.engineSummary(0).evictedBlocks()).isZero();
        // Gone altogether now: a second removal is unknown.
        apply(index, removed(evicted, Medium.GPU, GroupKind.FULL_ATTENTION));
        assertThat(index.stats().counts().unknownRemovals).isOne();
    }

    @Test
    void aStoreUnderAnEvictedPrefixBringsThePrefixBackAndScoresIt() {
        BlockIndex index = index(3);
        int[] prompt = tokens(100, 4 * G + 1);
        apply(index, gpu(new long[] {1, 2, 3}, null, tokens(100, 3 * G)));
        apply(index, gpu(new long[] {9}, null, tokens(900, G)));
        // Four indexed, quota three: a tail went (3 or 9, whichever the hand met first).
        assertThat(index.engineSummary(0).evictedBlocks()).isEqualTo(1);
        // The conversation goes on under block 3: it and its chain are in use, so the cold block 9 goes instead.
        apply(index, gpu(new long[] {4}, 3L, tokens(100 + 3 * G, G)));
        assertThat(indexed(index, 9)).isFalse();
        assertThat(index.engineSummary(0).blocks()).isLessThanOrEqualTo(3);
        assertThat(index.score("m", null, prompt, null, null, 0, 0).get(0).gpuBlocks()).isEqualTo(3);
    }

    @Test
    void aClearEndsTruncation() {
        BlockIndex index = index(1);
        apply(index, gpu(new long[] {1}, null, tokens(100, G)));
        apply(index, gpu(new long[] {2}, null, tokens(500, G)));
        assertThat(index.engineSummary(0).truncated()).isTrue();
        index.reset(0, 2);
        assertThat(index.engineSummary(0).truncated()).isFalse();
        assertThat(index.engineSummary(0).evictedBlocks()).isZero();
    }

    @Test
    void budgetSplitsIntoFixedQuotas() {
        IndexBudget budget = IndexBudget.of(1000, 1000);
        assertThat(budget.quotaBlocks()).isEqualTo(1000L * 1024 * 1024 / 1000 / IndexBudget.BYTES_PER_BLOCK);
        assertThat(budget.lowWater()).isLessThan(budget.quotaBlocks());
        assertThat(IndexBudget.of(0, 1000).limited()).isFalse();
    }
}
