package io.kvbroker.watch;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.watch.ResumePlan.Decision;
import io.kvbroker.watch.ResumePlan.Engine;
import io.kvbroker.watch.ResumePlan.Held;
import io.kvbroker.watch.ResumePlan.Kind;
import io.kvbroker.watch.ResumePlan.Logged;
import io.kvbroker.watch.ResumePoint.EnginePosition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Each way a Watch stream resumes an engine, from plain values: no index, journal, ring or socket. */
class ResumePlanTest {
    private static final String BROKER = "broker-a";
    private static final Engine A = new Engine(0, "pod-a/0");
    private static final Engine B = new Engine(1, "pod-b/0");

    /** A ring holding [tail, next) and a journal holding [journalFirst, next), both as maps. */
    private final Map<Long, Logged> ring = new HashMap<>();
    private final Map<Long, Logged> journal = new HashMap<>();
    private final Map<Integer, Held> held = new HashMap<>();
    private final List<Engine> currentRead = new ArrayList<>();
    private long ringTail = 100;

    private final ResumePlan.Log log = new ResumePlan.Log() {
        @Override
        public long ringTail() {
            return ringTail;
        }

        @Override
        public Logged ring(long brokerSequence) {
            return ring.get(brokerSequence);
        }

        @Override
        public Logged journal(long brokerSequence) {
            return journal.get(brokerSequence);
        }
    };

    private ResumePlan plan(ResumePoint from, List<String> watchedNames, Engine... engines) {
        return ResumePlan.plan(from, BROKER, 200, List.of(engines), e -> {
            currentRead.add(e);
            return held.getOrDefault(e.id(), new Held(0, -1, 0, 0));
        }, name -> watchedNames.isEmpty() || watchedNames.contains(name), log);
    }

    private static ResumePoint point(String brokerId, EnginePosition... positions) {
        return new ResumePoint(brokerId, List.of(positions));
    }

    private static EnginePosition at(Engine engine, long incarnation, long sequence, long fingerprint,
            long brokerSequence) {
        return new EnginePosition(engine.name(), incarnation, sequence, fingerprint, brokerSequence);
    }

    @Test
    void withoutAResumePointEveryEngineIsSnapshottedInOrder() {
        ResumePlan plan = plan(null, List.of(), B, A);

        assertThat(plan.decisions()).extracting(Decision::kind).containsExactly(Kind.SNAPSHOT, Kind.SNAPSHOT);
        assertThat(plan.snapshots()).containsExactly(B.id(), A.id());
        assertThat(plan.cursor()).isEqualTo(200);
        assertThat(plan.removed()).isEmpty();
        assertThat(currentRead).as("no engine's current state is read without a position").isEmpty();
    }

    @Test
    void anEngineHeldExactlyAtItsPositionOnThisBrokerIsCurrent() {
        held.put(A.id(), new Held(3, 41, 0xAA, 150));

        ResumePlan plan = plan(point(BROKER, at(A, 3, 41, 0xAA, 150)), List.of(), A);

        assertThat(plan.decision(A.id())).isEqualTo(new Decision(A, Kind.CURRENT, 150));
        assertThat(plan.cursor()).as("nothing before live batches").isEqualTo(200);
        assertThat(plan.snapshots()).isEmpty();
    }

    @Test
    void onThisBrokerAResetPositionIsCurrentByBrokerSequenceAlone() {
        // A reset has no engine sequence or fingerprint; on the broker that numbered it, its broker sequence names it.
        held.put(A.id(), new Held(4, -1, 0, 160));

        assertThat(plan(point(BROKER, at(A, 4, -1, 0, 160)), List.of(), A).decision(A.id()).kind())
                .isEqualTo(Kind.CURRENT);
        assertThat(plan(point("broker-b", at(A, 4, -1, 0, 160)), List.of(), A).decision(A.id()).kind())
                .as("on another broker a reset cannot be placed").isEqualTo(Kind.SNAPSHOT);
    }

    @Test
    void onAnotherBrokerAnEngineHeldAtTheSameSequenceAndFingerprintIsCurrent() {
        held.put(A.id(), new Held(9, 41, 0xAA, 777));

        ResumePlan plan = plan(point("broker-b", at(A, 3, 41, 0xAA, 150)), List.of(), A);

        assertThat(plan.decision(A.id())).isEqualTo(new Decision(A, Kind.CURRENT, 777));
    }

    @Test
    void aPositionThisBrokerLoggedInTheRingResumesFromTheLog() {
        held.put(A.id(), new Held(3, 45, 0xEE, 190));
        ring.put(150L, new Logged(A.id(), null, 3, 41, 0xAA));

        ResumePlan plan = plan(point(BROKER, at(A, 3, 41, 0xAA, 150)), List.of(), A);

        assertThat(plan.decision(A.id())).isEqualTo(new Decision(A, Kind.FROM_LOG, 150));
        assertThat(plan.cursor()).isEqualTo(151);
        assertThat(plan.count(Kind.FROM_LOG)).isEqualTo(1);
    }

    @Test
    void aPositionOlderThanTheRingResumesFromTheJournalByName() {
        held.put(A.id(), new Held(3, 45, 0xEE, 190));
        journal.put(50L, new Logged(-1, A.name(), 3, 41, 0xAA));

        ResumePlan plan = plan(point(BROKER, at(A, 3, 41, 0xAA, 50)), List.of(), A);

        assertThat(plan.decision(A.id())).isEqualTo(new Decision(A, Kind.FROM_LOG, 50));
        assertThat(plan.cursor()).as("reads from the journal first").isEqualTo(51);
    }

    @Test
    void theEarliestLoggedPositionSetsTheCursor() {
        held.put(A.id(), new Held(3, 45, 0xEE, 190));
        held.put(B.id(), new Held(1, 12, 0xBB, 191));
        ring.put(170L, new Logged(A.id(), null, 3, 41, 0xAA));
        journal.put(60L, new Logged(-1, B.name(), 1, 7, 0x77));

        ResumePlan plan = plan(point(BROKER, at(A, 3, 41, 0xAA, 170), at(B, 1, 7, 0x77, 60)), List.of(), A, B);

        assertThat(plan.cursor()).isEqualTo(61);
    }

    @Test
    void aLoggedBatchOfAnotherEngineOrIncarnationOrPayloadIsNotTheEngines() {
        held.put(A.id(), new Held(3, 45, 0xEE, 190));
        // The ring's batch at 150 is B's (this broker renumbered after losing A's batch in a crash), the journal's at
        // 50 is of another incarnation: neither places A's position, and the ring has no batch of A at sequence 41.
        ring.put(150L, new Logged(B.id(), null, 3, 41, 0xAA));
        journal.put(50L, new Logged(-1, A.name(), 2, 41, 0xAA));
        journal.put(51L, new Logged(-1, A.name(), 3, 41, 0xAB));

        assertThat(plan(point(BROKER, at(A, 3, 41, 0xAA, 150)), List.of(), A).decision(A.id()).kind())
                .isEqualTo(Kind.SNAPSHOT);
        assertThat(plan(point(BROKER, at(A, 3, 41, 0xAA, 50)), List.of(), A).decision(A.id()).kind())
                .isEqualTo(Kind.SNAPSHOT);
        assertThat(plan(point(BROKER, at(A, 3, 41, 0xAA, 51)), List.of(), A).decision(A.id()).kind())
                .isEqualTo(Kind.SNAPSHOT);
    }

    @Test
    void aTokenOfAnotherBrokerResumesFromTheRingBySequenceAndFingerprint() {
        held.put(A.id(), new Held(1, 45, 0xEE, 190));
        // The other broker's sequence 150 means nothing here; the batch is at 120 in this ring.
        ring.put(150L, new Logged(A.id(), null, 1, 99, 0x99));
        ring.put(120L, new Logged(A.id(), null, 1, 41, 0xAA));

        ResumePlan plan = plan(point("broker-b", at(A, 7, 41, 0xAA, 150)), List.of(), A);

        assertThat(plan.decision(A.id())).isEqualTo(new Decision(A, Kind.FROM_RING, 120));
        assertThat(plan.cursor()).isEqualTo(121);
    }

    @Test
    void onThisBrokerAPositionNotAtItsBrokerSequenceIsStillFoundInTheRing() {
        held.put(A.id(), new Held(3, 45, 0xEE, 190));
        ring.put(130L, new Logged(A.id(), null, 3, 41, 0xAA));

        ResumePlan plan = plan(point(BROKER, at(A, 3, 41, 0xAA, 150)), List.of(), A);

        assertThat(plan.decision(A.id())).isEqualTo(new Decision(A, Kind.FROM_RING, 130));
    }

    @Test
    void theRingIsSearchedFromItsTailOnlyAndNeverForResets() {
        held.put(A.id(), new Held(1, 45, 0xEE, 190));
        held.put(B.id(), new Held(1, 45, 0xEE, 191));
        ring.put(90L, new Logged(A.id(), null, 1, 41, 0xAA));
        ring.put(140L, new Logged(B.id(), null, 1, -1, 0));

        ResumePlan plan = plan(point("broker-b", at(A, 1, 41, 0xAA, 90), at(B, 1, -1, 0, 140)), List.of(), A, B);

        assertThat(plan.decisions()).extracting(Decision::kind).containsExactly(Kind.SNAPSHOT, Kind.SNAPSHOT);
        assertThat(plan.snapshots()).containsExactly(A.id(), B.id());
        assertThat(plan.cursor()).isEqualTo(200);
    }

    @Test
    void enginesWithoutAPositionAreSnapshottedBeforeThoseThatCouldNotBePlaced() {
        held.put(A.id(), new Held(1, 45, 0xEE, 190));

        ResumePlan plan = plan(point(BROKER, at(A, 1, 41, 0xAA, 150)), List.of(), A, B);

        assertThat(plan.snapshots()).containsExactly(B.id(), A.id());
        assertThat(plan.decisions()).extracting(d -> d.engine().id()).as("decisions keep the engines' order")
                .containsExactly(A.id(), B.id());
        assertThat(plan.count(Kind.SNAPSHOT)).isEqualTo(2);
    }

    @Test
    void namesThisBrokerNoLongerHasAreRemovedSortedWhenTheFilterWatchesThem() {
        ResumePlan plan = plan(point(BROKER, at(new Engine(7, "gone-z/0"), 1, 1, 1, 1),
                at(new Engine(8, "gone-a/0"), 1, 1, 1, 1), at(new Engine(9, "other/0"), 1, 1, 1, 1)),
                List.of(A.name(), "gone-z/0", "gone-a/0"), A);

        assertThat(plan.removed()).containsExactly("gone-a/0", "gone-z/0");
        assertThat(plan.decision(A.id()).kind()).isEqualTo(Kind.SNAPSHOT);
    }

    @Test
    void aNameGivenTwiceResumesFromItsLastPosition() {
        held.put(A.id(), new Held(3, 41, 0xAA, 150));

        ResumePlan plan = plan(point(BROKER, at(A, 3, 40, 0x11, 140), at(A, 3, 41, 0xAA, 150)), List.of(), A);

        assertThat(plan.decision(A.id()).kind()).isEqualTo(Kind.CURRENT);
    }
}
