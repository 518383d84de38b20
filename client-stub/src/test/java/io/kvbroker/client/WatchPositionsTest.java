package io.kvbroker.client;

import static io.kvbroker.client.WatchMessages.added;
import static io.kvbroker.client.WatchMessages.batch;
import static io.kvbroker.client.WatchMessages.changes;
import static io.kvbroker.client.WatchMessages.removed;
import static io.kvbroker.client.WatchMessages.snapshot;
import static io.kvbroker.client.WatchMessages.started;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvbroker.proto.v1.EnginePosition;
import io.kvbroker.proto.v1.ResumeToken;
import org.junit.jupiter.api.Test;

/** Positions follow the messages applied, and the token carries them to the next stream. */
class WatchPositionsTest {
    private static final long[] NONE = new long[0];
    private static final int[] NO_INTS = new int[0];

    @Test
    void theTokenRoundTripsInBytesAndBase64() throws Exception {
        WatchPositions positions = new WatchPositions();
        positions.onMessage(started("b1", 40, 16, true));
        positions.onMessage(added(0, "p/0", "m"));
        positions.onMessage(added(1, "q/1", "m"));
        positions.onMessage(snapshot(0, 0, true, 7, 30, NONE, NO_INTS, NO_INTS));
        positions.onMessage(changes(batch(1, 3, 41, false, NONE, NO_INTS, NO_INTS)));

        ResumeToken token = ResumeToken.parseFrom(positions.token());
        assertThat(token.getBrokerId()).isEqualTo("b1");
        assertThat(token.getEnginesList()).containsExactly(
                EnginePosition.newBuilder().setEngine("p/0").setIncarnation(1).setSequence(7).setFingerprint(7 * 31)
                        .setBrokerSequence(30).build(),
                EnginePosition.newBuilder().setEngine("q/1").setIncarnation(1).setSequence(3).setFingerprint(3 * 31)
                        .setBrokerSequence(41).build());

        WatchPositions copy = WatchPositions.fromBase64(positions.tokenBase64());
        assertThat(copy.token()).isEqualTo(positions.token());
        assertThat(copy.positions()).isEqualTo(positions.positions());
        assertThat(positions.tokenBase64()).doesNotContain("+", "/", "=");
        assertThat(WatchPositions.fromToken(copy.token()).brokerId()).isEqualTo("b1");
    }

    @Test
    void nothingHeldIsAnEmptyToken() {
        assertThat(new WatchPositions().token()).isEmpty();
        assertThat(WatchPositions.fromBase64("").token()).isEmpty();
        assertThatThrownBy(() -> WatchPositions.fromBase64("not base64!"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("resume token");
    }

    @Test
    void aFirstPartForgetsThePositionUntilTheLastPart() {
        WatchPositions positions = new WatchPositions();
        positions.onMessage(started("b1", 10, 16, true));
        positions.onMessage(added(0, "p/0", "m"));
        positions.onMessage(snapshot(0, 0, true, 1, 5, NONE, NO_INTS, NO_INTS));
        positions.onMessage(snapshot(0, 0, false, 2, 9, NONE, NO_INTS, NO_INTS));
        assertThat(positions.position("p/0")).isNull();
        positions.onMessage(snapshot(0, 1, true, 2, 9, NONE, NO_INTS, NO_INTS));
        assertThat(positions.position("p/0").getSequence()).isEqualTo(2);
        positions.onMessage(removed(0, "p/0"));
        assertThat(positions.positions()).isEmpty();
    }

    @Test
    void positionsAStreamDoesNotMentionAreKept() {
        WatchPositions positions = new WatchPositions();
        positions.onMessage(started("b1", 10, 16, true));
        positions.onMessage(added(0, "p/0", "m"));
        positions.onMessage(added(1, "q/0", "m"));
        positions.onMessage(changes(batch(0, 1, 11, false, NONE, NO_INTS, NO_INTS),
                batch(1, 1, 12, false, NONE, NO_INTS, NO_INTS)));
        positions.onMessage(started("b2", 900, 16, false));
        positions.onMessage(added(5, "q/0", "m"));
        positions.onMessage(changes(batch(5, 2, 901, false, NONE, NO_INTS, NO_INTS)));
        assertThat(positions.brokerId()).isEqualTo("b2");
        assertThat(positions.position("p/0").getBrokerSequence()).isEqualTo(11);
        assertThat(positions.position("q/0").getBrokerSequence()).isEqualTo(901);
    }

    @Test
    void caughtUpOnceTheAnnouncedSnapshotsAreWholeAndResumedEnginesReachTheStart() {
        WatchPositions positions = new WatchPositions();
        assertThat(positions.caughtUp()).isFalse();
        positions.onMessage(io.kvbroker.proto.v1.WatchResponse.newBuilder().setStarted(
                started("b1", 20, 16, false).getStarted().toBuilder().setEnginesSnapshotted(1).setEnginesResumed(1))
                .build());
        positions.onMessage(added(0, "p/0", "m"));
        positions.onMessage(added(1, "q/0", "m"));
        positions.onMessage(snapshot(0, 0, true, 1, 5, NONE, NO_INTS, NO_INTS));
        assertThat(positions.caughtUp()).isFalse();
        positions.onMessage(changes(batch(1, 4, 20, false, NONE, NO_INTS, NO_INTS)));
        assertThat(positions.caughtUp()).isTrue();
    }
}
