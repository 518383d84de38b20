package io.kvbroker.client;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.HolderTable;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import static io.kvbroker.client.WatchMessages.added;
import static io.kvbroker.client.WatchMessages.batch;
import static io.kvbroker.client.WatchMessages.changes;
import static io.kvbroker.client.WatchMessages.removed;
import static io.kvbroker.client.WatchMessages.repeat;
import static io.kvbroker.client.WatchMessages.snapshot;
import static io.kvbroker.client.WatchMessages.started;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The mirror applies hand-built streams and scores as PrefixScorer does over the same holdings. */
class IndexMirrorTest {
    private static final int G = 4;
    private static final String MODEL = "llama";
    /** Six chunks and one token: all six chunks score ((25 - 1) / 4 = 6). */
    private static final int[] TOKENS = tokens(6 * G + 1);
    private static final long[] KEYS = new ContentKeys(G).promptKeys(MODEL, null, TOKENS);

    private static int[] tokens(int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = 1000 + i;
        }
        return t;
    }

    private static long[] keys(int from, int to) {
        return Arrays.copyOfRange(KEYS, from, to);
    }

    @Test
    void snapshotsInPartsThenBatchesScoreAsPrefixScorerOverTheSameHoldings() {
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 10, G, true));
        mirror.onMessage(added(7, "pod-a/0", MODEL));
        mirror.onMessage(added(3, "pod-b/0", MODEL));
        // pod-a: six chunks on GPU, in two parts; pod-b: three on GPU, then one span-2 block on CPU.
        mirror.onMessage(snapshot(7, 0, false, 5, 9, keys(0, 3), repeat(1, 3), repeat(Media.GPU, 3)));
        mirror.onMessage(snapshot(7, 1, true, 5, 9, keys(3, 6), repeat(1, 3), repeat(Media.GPU, 3)));
        mirror.onMessage(snapshot(3, 0, true, 2, 8, keys(0, 3), repeat(1, 3), repeat(Media.GPU, 3)));
        mirror.onMessage(changes(batch(3, 3, 11, false, new long[] {KEYS[4]}, new int[] {2},
                new int[] {Media.CPU})));

        int a = mirror.engineId("pod-a/0");
        int b = mirror.engineId("pod-b/0");
        assertThat(a).isZero();
        assertThat(b).isEqualTo(1);
        assertThat(mirror.name(b)).isEqualTo("pod-b/0");
        assertThat(mirror.model(b)).isEqualTo(MODEL);

        HolderTable table = new HolderTable();
        for (int i = 0; i < 6; i++) {
            table.add(KEYS[i], a, 1, Media.GPU);
        }
        for (int i = 0; i < 3; i++) {
            table.add(KEYS[i], b, 1, Media.GPU);
        }
        table.add(KEYS[4], b, 2, Media.CPU);
        List<PrefixScore> expected = new PrefixScorer(PrefixScorer.Weights.DEFAULT).score(new ContentKeys(G),
                new ContentKeys(G).root(MODEL, null), TOKENS, PrefixScorer.chunksToScore(TOKENS.length, G), table,
                null, 0, 0);

        assertThat(mirror.score(MODEL, null, TOKENS, 0, 0)).isEqualTo(expected);
        assertThat(expected).extracting(PrefixScore::engineId).containsExactly(a, b);
        assertThat(expected.get(1).offloadBlocks()).isEqualTo(2);
        assertThat(mirror.scoreKeys(KEYS, 0, 0)).isEqualTo(expected);
        assertThat(mirror.scoreKeys(KEYS, new int[] {b}, 1, 0)).containsExactly(expected.get(1));
        assertThat(mirror.score(MODEL, "adapter", TOKENS, 0, 0)).isEmpty();
        assertThat(mirror.positions().position("pod-b/0").getBrokerSequence()).isEqualTo(11);
        assertThat(mirror.positions().caughtUp()).isTrue();
    }

    @Test
    void clearedBatchesAndMediaZeroDropHoldings() {
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 0, G, true));
        mirror.onMessage(added(0, "p/0", MODEL));
        mirror.onMessage(snapshot(0, 0, true, 1, 1, keys(0, 4), repeat(1, 4), repeat(Media.GPU, 4)));
        // Key 2 leaves, key 1 moves to CPU as well.
        mirror.onMessage(changes(batch(0, 2, 2, false, new long[] {KEYS[2], KEYS[1]}, new int[] {1, 1},
                new int[] {0, Media.GPU | Media.CPU})));
        assertThat(mirror.holdings(0)).containsOnlyKeys(KEYS[0], KEYS[1], KEYS[3]);
        assertThat(mirror.holdings(0).get(KEYS[1])).isEqualTo(1 << 4 | Media.GPU | Media.CPU);
        assertThat(mirror.score(MODEL, null, TOKENS, 0, 0)).singleElement()
                .satisfies(s -> assertThat(s.totalBlocks()).isEqualTo(2));

        mirror.onMessage(changes(batch(0, -1, 3, true, new long[] {KEYS[5]}, new int[] {1},
                new int[] {Media.STORAGE})));
        assertThat(mirror.holdings(0)).containsOnlyKeys(KEYS[5]);
        assertThat(mirror.keys()).isEqualTo(1);
        assertThat(mirror.score(MODEL, null, TOKENS, 0, 0)).isEmpty();
    }

    @Test
    void aSnapshotsFirstPartReplacesWhatWasHeld() {
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 0, G, true));
        mirror.onMessage(added(0, "p/0", MODEL));
        mirror.onMessage(snapshot(0, 0, true, 1, 1, keys(0, 4), repeat(1, 4), repeat(Media.GPU, 4)));
        mirror.onMessage(snapshot(0, 0, false, 9, 9, keys(4, 5), repeat(1, 1), repeat(Media.CPU, 1)));
        assertThat(mirror.holdings(0)).containsOnlyKeys(KEYS[4]);
        assertThat(mirror.positions().position("p/0")).isNull();
        mirror.onMessage(snapshot(0, 1, true, 9, 9, keys(5, 6), repeat(1, 1), repeat(Media.CPU, 1)));
        assertThat(mirror.holdings(0)).containsOnlyKeys(KEYS[4], KEYS[5]);
        assertThat(mirror.positions().position("p/0").getSequence()).isEqualTo(9);
    }

    @Test
    void engineRemovedForgetsHoldingsAndPositionButKeepsTheIdForTheName() {
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 0, G, true));
        mirror.onMessage(added(4, "p/0", MODEL));
        mirror.onMessage(added(5, "q/0", MODEL));
        mirror.onMessage(snapshot(4, 0, true, 1, 1, keys(0, 3), repeat(1, 3), repeat(Media.GPU, 3)));
        mirror.onMessage(snapshot(5, 0, true, 1, 2, keys(0, 3), repeat(1, 3), repeat(Media.GPU, 3)));
        mirror.onMessage(removed(4, "p/0"));
        assertThat(mirror.holdings(0)).isEmpty();
        assertThat(mirror.positions().positions()).containsOnlyKeys("q/0");
        assertThat(mirror.score(MODEL, null, TOKENS, 0, 0)).extracting(PrefixScore::engineId).containsExactly(1);

        mirror.onMessage(added(9, "p/0", MODEL));
        assertThat(mirror.engineId("p/0")).isZero();
    }

    @Test
    void aSecondStreamWithOtherEngineIdsMapsToTheSameMirrorIds() {
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 0, G, true));
        mirror.onMessage(added(0, "p/0", MODEL));
        mirror.onMessage(added(1, "q/0", MODEL));
        mirror.onMessage(snapshot(0, 0, true, 1, 1, keys(0, 2), repeat(1, 2), repeat(Media.GPU, 2)));
        mirror.onMessage(snapshot(1, 0, true, 1, 2, keys(0, 3), repeat(1, 3), repeat(Media.GPU, 3)));

        // Fail-over: replica b2 numbers q/0 as 0 and p/0 as 1, and resumes both from the token.
        mirror.onMessage(started("b2", 500, G, false));
        mirror.onMessage(added(0, "q/0", MODEL));
        mirror.onMessage(added(1, "p/0", MODEL));
        mirror.onMessage(changes(batch(1, 2, 501, false, new long[] {KEYS[2]}, new int[] {1},
                new int[] {Media.GPU})));
        assertThat(mirror.holdings(0)).containsOnlyKeys(KEYS[0], KEYS[1], KEYS[2]);
        assertThat(mirror.holdings(1)).containsOnlyKeys(KEYS[0], KEYS[1], KEYS[2]);
        assertThat(mirror.positions().brokerId()).isEqualTo("b2");
        assertThat(mirror.positions().position("p/0").getBrokerSequence()).isEqualTo(501);
        assertThat(mirror.positions().position("q/0").getBrokerSequence()).isEqualTo(2);
    }

    @Test
    void aStreamOfAnotherGranularityIsRejected() {
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 0, G, true));
        assertThatThrownBy(() -> mirror.onMessage(started("b2", 0, 16, false)))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("chunks of 16 tokens");
    }

    @Test
    void aBatchOfAnUnannouncedEngineIsAnError() {
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 0, G, true));
        assertThatThrownBy(() -> mirror.onMessage(changes(batch(3, 1, 1, false, new long[0], new int[0],
                new int[0])))).hasMessageContaining("engine id 3");
    }

    @Test
    void nothingScoresBeforeAStream() {
        assertThat(new IndexMirror().score(MODEL, null, TOKENS, 0, 0)).isEmpty();
    }
}
