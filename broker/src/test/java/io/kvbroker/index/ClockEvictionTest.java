package io.kvbroker.index;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.core.HolderTable;
import io.kvbroker.core.Media;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Eviction driven directly on one engine's table: chain tails only, the cheapest tier first, a referenced block spared
 * once, a chain emptied from its tail up, and an evicted chain restored from below.
 */
class ClockEvictionTest {
    private static final int ENGINE = 3;

    private final HolderTable holders = new HolderTable();
    private final IndexStats.Counts counts = new IndexStats.Counts();
    private final HolderLinks links = new HolderLinks(holders, counts);
    private final EngineBlocks blocks = new EngineBlocks(ENGINE, "m");

    /** A keyed, linked block under {@code parent} (none: {@link EngineBlocks#NONE}), not referenced. */
    private int block(long hash, int parent, int media) {
        int id = blocks.allocate(hash);
        if (parent != EngineBlocks.NONE) {
            blocks.setParent(id, parent);
        }
        blocks.setMedia(id, media);
        blocks.setKey(id, key(hash));
        blocks.setSpan(id, 1);
        blocks.addFlags(id, EngineBlocks.KEYED);
        blocks.clearFlags(id, EngineBlocks.REFERENCED);
        links.link(blocks, id);
        return id;
    }

    private static long key(long hash) {
        return 1000 + hash;
    }

    private boolean indexed(long hash) {
        int id = blocks.idOf(hash);
        return id != EngineBlocks.NONE && blocks.indexed(id) && holders.holds(key(hash), ENGINE);
    }

    private static ResolvedBatch.Evict evicted(List<ResolvedBatch.Change> changes) {
        assertThat(changes).hasSize(1);
        return (ResolvedBatch.Evict) changes.get(0);
    }

    @Test
    void takesStorageOnlyTailsThenCpuOnlyOnesAndNeverAParentOfAnIndexedBlock() {
        ClockEviction eviction = new ClockEviction(IndexBudget.ofQuota(2), counts, links);
        int a = block(1, EngineBlocks.NONE, Media.GPU);
        block(2, a, Media.GPU);
        block(3, EngineBlocks.NONE, Media.STORAGE);
        block(4, EngineBlocks.NONE, Media.CPU | Media.STORAGE);
        List<ResolvedBatch.Change> changes = new ArrayList<>();

        eviction.afterBatch(blocks, changes);

        assertThat(indexed(1)).isTrue();
        assertThat(indexed(2)).isTrue();
        assertThat(indexed(3)).isFalse();
        assertThat(indexed(4)).isFalse();
        assertThat(blocks.indexedCount()).isEqualTo(2);
        assertThat(blocks.evictedCount()).isEqualTo(2);
        assertThat(counts.evictedBlocks).isEqualTo(2);
        assertThat(evicted(changes).hashes()).containsExactly(3, 4);
        assertThat(evicted(changes).keys()).containsExactly(key(3), key(4));
        // Evicted entries stay, so the engine's later events about them resolve.
        assertThat(blocks.idOf(3)).isNotEqualTo(EngineBlocks.NONE);
    }

    @Test
    void sparesAReferencedTailOnceThenEmptiesTheChainFromItsTailUpAndNotesEachUnlink() {
        ClockEviction eviction = new ClockEviction(IndexBudget.ofQuota(2), counts, links);
        int a = block(1, EngineBlocks.NONE, Media.GPU);
        int b = block(2, a, Media.GPU);
        int c = block(3, b, Media.GPU);
        int d = block(4, c, Media.GPU);
        blocks.addFlags(d, EngineBlocks.REFERENCED);
        HoldingChanges noted = new HoldingChanges();
        links.noteInto(noted);
        List<ResolvedBatch.Change> changes = new ArrayList<>();

        eviction.afterBatch(blocks, changes);
        links.noteInto(null);

        assertThat(indexed(1)).isTrue();
        assertThat(indexed(2)).isTrue();
        assertThat(indexed(3)).isFalse();
        assertThat(indexed(4)).isFalse();
        assertThat(blocks.has(d, EngineBlocks.REFERENCED)).as("its second chance used").isFalse();
        assertThat(evicted(changes).hashes()).containsExactly(4, 3);
        assertThat(noted.size()).isEqualTo(2);
        assertThat(noted.key(0)).isEqualTo(key(4));
        assertThat(noted.media(0)).isZero();
        assertThat(noted.key(1)).isEqualTo(key(3));
        assertThat(noted.media(1)).isZero();
    }

    @Test
    void withinItsQuotaAnEngineLosesNothing() {
        ClockEviction eviction = new ClockEviction(IndexBudget.ofQuota(2), counts, links);
        int a = block(1, EngineBlocks.NONE, Media.STORAGE);
        block(2, a, Media.STORAGE);
        List<ResolvedBatch.Change> changes = new ArrayList<>();

        eviction.afterBatch(blocks, changes);

        assertThat(changes).isEmpty();
        assertThat(indexed(1)).isTrue();
        assertThat(indexed(2)).isTrue();
    }

    @Test
    void restoringFromBelowBringsBackTheEvictedChainAboveAndLinksIt() {
        ClockEviction eviction = new ClockEviction(IndexBudget.ofQuota(1), counts, links);
        int a = block(1, EngineBlocks.NONE, Media.GPU);
        int b = block(2, a, Media.GPU);
        block(3, b, Media.GPU);
        eviction.afterBatch(blocks, null);
        assertThat(indexed(1)).isTrue();
        assertThat(indexed(2)).isFalse();

        eviction.restoreFrom(blocks, b);

        assertThat(indexed(2)).isTrue();
        assertThat(indexed(3)).as("below the restored block: not named, stays evicted").isFalse();
        assertThat(blocks.has(b, EngineBlocks.REFERENCED)).isTrue();
        assertThat(counts.restoredBlocks).isEqualTo(1);
    }
}
