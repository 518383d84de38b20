package io.kvbroker.index;

import static io.kvbroker.index.Events.batch;
import static io.kvbroker.index.Events.gpu;
import static io.kvbroker.index.Events.offloaded;
import static io.kvbroker.index.Events.tokens;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.Medium;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** An engine's checkpoint restores it as it was, in place of what the index held; damaged bytes are refused. */
class EngineCheckpointsTest {
    private static final int G = 16;
    private static final int ENGINE = 7;

    private static BlockIndex index() {
        return new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT);
    }

    @Test
    void aRestoredEngineHoldsAndScoresAsTheOneCheckpointedAndNothingOfWhatItReplaced() {
        BlockIndex original = index();
        original.apply(ENGINE, 2, 5, batch(gpu(new long[] {1, 2, 3}, null, tokens(100, 3 * G)),
                offloaded(2, Medium.CPU)));
        BlockIndex restored = index();
        restored.apply(ENGINE, 1, 9, batch(gpu(new long[] {40}, null, tokens(900, G))));

        restored.restore(ENGINE, original.checkpoint(ENGINE));

        BlockIndex.EngineHoldings expected = original.holdings(ENGINE, true);
        BlockIndex.EngineHoldings actual = restored.holdings(ENGINE, true);
        assertThat(actual.incarnation()).isEqualTo(2);
        assertThat(actual.sequence()).isEqualTo(5);
        assertThat(actual.keys()).containsExactly(expected.keys());
        assertThat(actual.values()).containsExactly(expected.values());
        assertThat(restored.engineSummary(ENGINE)).isEqualTo(original.engineSummary(ENGINE));
        int[] prompt = tokens(100, 3 * G + 1);
        assertThat(restored.score("m", null, prompt, null, null, 0, 0))
                .isEqualTo(original.score("m", null, prompt, null, null, 0, 0));
        assertThat(restored.score("m", null, tokens(900, G + 1), null, null, 0, 0)).isEmpty();
        assertThat(restored.stats().keys()).isEqualTo(3);
    }

    @Test
    void bytesCutShortOrOfAnotherFormatAreABadArgument() {
        BlockIndex index = index();
        index.apply(ENGINE, 1, 0, batch(gpu(new long[] {1, 2}, null, tokens(100, 2 * G))));
        byte[] bytes = index.checkpoint(ENGINE);
        EngineCheckpoints checkpoints = new EngineCheckpoints(id -> "m");

        assertThatThrownBy(() -> checkpoints.decode(ENGINE, Arrays.copyOf(bytes, bytes.length - 1)))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("checkpoint of engine 7 is cut short");
        byte[] otherFormat = bytes.clone();
        otherFormat[3] = 99;
        assertThatThrownBy(() -> checkpoints.decode(ENGINE, otherFormat))
                .isInstanceOf(IllegalArgumentException.class).hasMessageStartingWith("checkpoint format 99,");
        assertThat(EngineCheckpoints.encode(null)).isNull();
        assertThat(index.checkpoint(ENGINE + 1)).isNull();
    }
}
