package io.kvbroker.index;

import static io.kvbroker.index.Events.batch;
import static io.kvbroker.index.Events.cleared;
import static io.kvbroker.index.Events.gpu;
import static io.kvbroker.index.Events.offloaded;
import static io.kvbroker.index.Events.removed;
import static io.kvbroker.index.Events.stored;
import static io.kvbroker.index.Events.tokens;
import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.Medium;
import java.util.List;
import org.junit.jupiter.api.Test;

class BlockIndexTest {
    private static final int G = 16;
    private final BlockIndex index = new BlockIndex(id -> id == 9 ? "other-model" : "m", G,
            PrefixScorer.Weights.DEFAULT);
    /** A 4-block prompt plus one token, so all 4 blocks can score. */
    private final int[] prompt = tokens(100, 4 * G + 1);

    private void apply(int engine, io.kvbroker.event.KvEvent... events) {
        index.apply(engine, 1, 0, batch(events));
    }

    private List<PrefixScore> score() {
        return index.score("m", null, prompt, null, null, 0, 0);
    }

    private PrefixScore scoreOf(int engine) {
        return score().stream().filter(s -> s.engineId() == engine).findFirst().orElse(null);
    }

    @Test
    void leadingGpuRunIsScoredPerEngineAndTheLastTokenIsRecomputed() {
        apply(0, gpu(new long[] {11, 12, 13, 14}, null, tokens(100, 4 * G)));
        apply(1, gpu(new long[] {21, 22}, null, tokens(100, 2 * G)));
        assertThat(score()).extracting(PrefixScore::engineId).containsExactly(0, 1);
        assertThat(scoreOf(0).gpuBlocks()).isEqualTo(4);
        assertThat(scoreOf(1).gpuTokens()).isEqualTo(2 * G);
        // A prompt of exactly 4 blocks scores 3: the engine must recompute its last token.
        assertThat(index.score("m", null, tokens(100, 4 * G), null, null, 0, 0).get(0).gpuBlocks()).isEqualTo(3);
    }

    @Test
    void childrenStoredInLaterEventsChainThroughTheParentHash() {
        apply(0, gpu(new long[] {11}, null, tokens(100, G)));
        apply(0, gpu(new long[] {12, 13}, 11L, tokens(100 + G, 2 * G)));
        assertThat(scoreOf(0).gpuBlocks()).isEqualTo(3);
    }

    @Test
    void offloadRunFollowsTheGpuRunWeightedByItsBestMedium() {
        apply(0, gpu(new long[] {11, 12, 13}, null, tokens(100, 3 * G)));
        // The connector copies a block out before the GPU evicts it.
        apply(0, offloaded(13, Medium.CPU), removed(13, Medium.GPU, GroupKind.FULL_ATTENTION));
        apply(0, offloaded(12, Medium.STORAGE), removed(12, Medium.GPU, GroupKind.FULL_ATTENTION));
        PrefixScore s = scoreOf(0);
        assertThat(s.gpuBlocks()).isEqualTo(1);
        assertThat(s.offloadBlocks()).isEqualTo(2);
        assertThat(s.score()).isEqualTo(G * 1.0 + G * 0.5 + G * 0.8);
    }

    @Test
    void anOffloadAnnouncedAfterTheGpuEvictionCannotBeResolved() {
        apply(0, gpu(new long[] {11}, null, tokens(100, G)));
        apply(0, removed(11, Medium.GPU, GroupKind.FULL_ATTENTION), offloaded(11, Medium.CPU));
        assertThat(score()).isEmpty();
        assertThat(index.stats().counts().orphanBlocks).isOne();
    }

    @Test
    void removalsOfOtherGroupsNeverTouchTheFullAttentionEntry() {
        apply(0, gpu(new long[] {11, 12}, null, tokens(100, 2 * G)));
        apply(0, stored(new long[] {11, 12}, null, tokens(100, 2 * G), G, Medium.GPU, null, null,
                GroupKind.SLIDING_WINDOW));
        apply(0, removed(11, Medium.GPU, GroupKind.SLIDING_WINDOW), removed(12, Medium.GPU, GroupKind.UNKNOWN));
        assertThat(scoreOf(0).gpuBlocks()).isEqualTo(2);
        assertThat(index.stats().counts().skippedOtherGroups).isEqualTo(4);
    }

    @Test
    void repeatedStoresAreIdempotentAndOneRemovalRemoves() {
        apply(0, gpu(new long[] {11}, null, tokens(100, G)));
        apply(0, gpu(new long[] {11}, null, tokens(100, G)));
        assertThat(index.stats().keys()).isOne();
        assertThat(index.blocksOf(0)).isOne();
        // The stated rule: copies are not counted, so the first removal of the hash removes it from that medium.
        apply(0, removed(11, Medium.GPU, GroupKind.FULL_ATTENTION));
        assertThat(score()).isEmpty();
        assertThat(index.blocksOf(0)).isZero();
    }

    @Test
    void orphansAreKeptForRemovalsButNeverScoredUntilReRooted() {
        apply(0, gpu(new long[] {12, 13}, 11L, tokens(100 + G, 2 * G)));
        assertThat(score()).isEmpty();
        assertThat(index.stats().counts().orphanBlocks).isEqualTo(2);
        assertThat(index.lookupHashes(new long[] {12}).get(0)).containsExactly(new BlockIndex.Holder(0, Media.GPU));
        // The chain is announced again from its root: the orphans get keys.
        apply(0, gpu(new long[] {11, 12, 13}, null, tokens(100, 3 * G)));
        assertThat(scoreOf(0).gpuBlocks()).isEqualTo(3);
        assertThat(index.stats().counts().rerootedBlocks).isEqualTo(2);
    }

    @Test
    void clearsAllMediaOrOneMedium() {
        apply(0, gpu(new long[] {11, 12}, null, tokens(100, 2 * G)), offloaded(11, Medium.CPU),
                offloaded(12, Medium.CPU));
        apply(0, cleared(Medium.GPU));
        assertThat(scoreOf(0).offloadBlocks()).isEqualTo(2);
        apply(0, cleared(Medium.UNSPECIFIED));
        assertThat(score()).isEmpty();
        assertThat(index.blocksOf(0)).isZero();
    }

    @Test
    void resetForgetsTheEngine() {
        apply(0, gpu(new long[] {11}, null, tokens(100, G)));
        apply(1, gpu(new long[] {21}, null, tokens(100, G)));
        index.reset(0, 2);
        assertThat(score()).extracting(PrefixScore::engineId).containsExactly(1);
    }

    @Test
    void loraAndModelHaveTheirOwnKeyspaces() {
        apply(0, stored(new long[] {11}, null, tokens(100, G), G, Medium.GPU, "adapter", List.of(List.of("adapter")),
                GroupKind.FULL_ATTENTION));
        apply(9, gpu(new long[] {91}, null, tokens(100, G)));
        assertThat(score()).isEmpty();
        assertThat(index.score("m", "adapter", prompt, null, null, 0, 0)).extracting(PrefixScore::engineId)
                .containsExactly(0);
        assertThat(index.score("other-model", null, prompt, null, null, 0, 0)).extracting(PrefixScore::engineId)
                .containsExactly(9);
    }

    @Test
    void largerEngineBlocksScoreOnTheSameChainInWholeBlocks() {
        // Engine 0 uses 32-token blocks (span 2); engine 1 16-token blocks.
        apply(0, stored(new long[] {1, 2}, null, tokens(100, 4 * G), 2 * G, Medium.GPU, null, null,
                GroupKind.FULL_ATTENTION));
        apply(1, gpu(new long[] {11, 12, 13}, null, tokens(100, 3 * G)));
        assertThat(scoreOf(0).gpuBlocks()).isEqualTo(4);
        assertThat(scoreOf(1).gpuBlocks()).isEqualTo(3);
        // A 3-chunk prompt: engine 0 can serve only its first whole block.
        int[] shorter = tokens(100, 3 * G + 1);
        List<PrefixScore> scores = index.score("m", null, shorter, null, null, 0, 0);
        assertThat(scores).extracting(PrefixScore::gpuBlocks).containsExactly(3, 2);
        assertThat(index.stats().counts().unkeyableBlocks).isZero();
    }

    @Test
    void topKMinTokensAndEngineFilter() {
        apply(0, gpu(new long[] {11, 12, 13}, null, tokens(100, 3 * G)));
        apply(1, gpu(new long[] {21}, null, tokens(100, G)));
        apply(2, gpu(new long[] {31, 32}, null, tokens(100, 2 * G)));
        assertThat(index.score("m", null, prompt, null, null, 2, 0)).extracting(PrefixScore::engineId)
                .containsExactly(0, 2);
        assertThat(index.score("m", null, prompt, null, null, 0, 2 * G)).extracting(PrefixScore::engineId)
                .containsExactly(0, 2);
        assertThat(index.score("m", null, prompt, null, new int[] {1, 2}, 0, 0)).extracting(PrefixScore::engineId)
                .containsExactly(2, 1);
    }

    @Test
    void contentKeysScoreLikeTokensAndLookUp() {
        apply(0, gpu(new long[] {11, 12}, null, tokens(100, 2 * G)));
        long[] keys = new ContentKeys(G).promptKeys("m", null, tokens(100, 2 * G));
        assertThat(index.score("m", null, null, keys, null, 0, 0).get(0).gpuBlocks()).isEqualTo(2);
        assertThat(index.lookupKeys(keys)).allSatisfy(holders ->
                assertThat(holders).containsExactly(new BlockIndex.Holder(0, Media.GPU)));
    }

    @Test
    void blocksNotMultipleOfTheGranularityAreKeptButUnkeyed() {
        apply(0, stored(new long[] {11}, null, tokens(100, 8), 8, Medium.GPU, null, null, GroupKind.FULL_ATTENTION));
        assertThat(index.stats().counts().unkeyableBlocks).isOne();
        assertThat(index.blocksOf(0)).isOne();
        apply(0, removed(11, Medium.GPU, GroupKind.FULL_ATTENTION));
        assertThat(index.blocksOf(0)).isZero();
    }

    @Test
    void engineSummaryCountsBlocksPerMediumAndTheAppliedSequence() {
        assertThat(index.appliedSequence(0)).isEqualTo(-1);
        index.apply(0, 3, 41, batch(gpu(new long[] {11, 12, 13}, null, tokens(100, 3 * G))));
        index.apply(0, 3, 42, batch(offloaded(12, Medium.CPU), offloaded(13, Medium.CPU),
                removed(13, Medium.GPU, GroupKind.FULL_ATTENTION)));
        BlockIndex.EngineSummary summary = index.engineSummary(0);
        assertThat(summary).isEqualTo(new BlockIndex.EngineSummary(42, 3, 3, 2, 2, 0, 0, 0, 0));
        assertThat(index.appliedSequence(0)).isEqualTo(42);
        index.reset(0, 4);
        assertThat(index.engineSummary(0)).isEqualTo(new BlockIndex.EngineSummary(-1, 4, 0, 0, 0, 0, 0, 0, 0));
    }
}
