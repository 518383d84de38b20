package io.kvbroker.journal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvbroker.apply.BatchApplier;
import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.IndexBudget;
import io.kvbroker.ingest.IngestSink.ResetReason;
import io.kvbroker.ingest.IngestSink;
import io.kvbroker.sim.Workload;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The journal in a real RocksDB: what recovery rebuilds, what retention keeps, and how bad stores are refused. */
class JournalTest {
    private static final int G = 16;
    private static final int ENGINES = 6;

    @TempDir
    Path dir;
    private final AtomicLong clock = new AtomicLong(1_000_000);
    private final EngineRegistry registry = new EngineRegistry();

    JournalTest() {
        for (int e = 0; e < ENGINES; e++) {
            registry.register(new EngineSpec(new EngineKey("vllm-" + e, 0), "m",
                    Endpoint.parse("tcp://10.0.0.1:" + (5557 + e)), java.util.Optional.empty(), ""));
        }
    }

    private BlockIndex index() {
        return new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT, IndexBudget.ofQuota(400));
    }

    /** An applier journaling to {@code journal}, as the daemon wires one (without a feed), and its checkpoints. */
    private record Journaled(BatchApplier applier, CheckpointScheduler checkpoints) {
    }

    private Journaled sink(BlockIndex index, Journal journal, long everyBatches) {
        JournalLog log = new JournalLog(index, registry, new CheckpointScheduler.Policy(everyBatches, 3_600_000),
                clock::get);
        log.attach(journal);
        return new Journaled(new BatchApplier(index, log, null), log.checkpoints());
    }

    /** Drives simulated engines' workloads (stores, evictions, offloads, LoRA, hybrid groups) and restarts. */
    private static final class Fleet {
        final Workload[] workloads = new Workload[ENGINES];
        final long[] sequence = new long[ENGINES];
        final long[] incarnation = new long[ENGINES];
        final SplittableRandom random = new SplittableRandom(7);

        Fleet() {
            for (int e = 0; e < ENGINES; e++) {
                workloads[e] = new Workload(new SplittableRandom(e), 3, Workload.Shape.typical(e % 2 == 0));
                incarnation[e] = 1;
            }
        }

        void run(IngestSink sink, int batches) {
            GroupKinds kinds = new GroupKinds();
            kinds.learn(0, GroupKind.FULL_ATTENTION);
            for (int i = 0; i < batches; i++) {
                int e = random.nextInt(ENGINES);
                if (random.nextInt(400) == 0) {
                    workloads[e].restart();
                    incarnation[e]++;
                    sequence[e] = 0;
                    sink.onReset(e, incarnation[e], ResetReason.RESTART_BY_SEQUENCE);
                    continue;
                }
                sink.onBatch(e, incarnation[e], sequence[e]++, new KvEventBatch(0, 0, workloads[e].step(), 0, 0),
                        sequence[e] * 31, kinds);
            }
        }
    }

    private static void assertSameAnswers(BlockIndex expected, BlockIndex actual, Fleet fleet) {
        assertThat(actual.stats().residencies()).isEqualTo(expected.stats().residencies());
        assertThat(actual.stats().keys()).isEqualTo(expected.stats().keys());
        ContentKeys keys = new ContentKeys(G);
        for (int e = 0; e < ENGINES; e++) {
            assertThat(actual.engineSummary(e)).as("engine %d", e).isEqualTo(expected.engineSummary(e));
        }
        for (int p = 0; p < 4; p++) {
            int[] prompt = fleet.workloads[0].systemPrompt(p);
            assertThat(actual.score("m", null, prompt, null, null, 0, 0))
                    .isEqualTo(expected.score("m", null, prompt, null, null, 0, 0));
            long[] chain = keys.promptKeys("m", null, prompt);
            assertThat(actual.lookupKeys(chain)).isEqualTo(expected.lookupKeys(chain));
        }
    }

    @Test
    void recoveryRebuildsTheIndexAndCursorsExactlyFromCheckpointsAndTheLog() {
        Fleet fleet = new Fleet();
        BlockIndex live = index();
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            Journaled sink = sink(live, journal, 150);
            fleet.run(sink.applier(), 4_000);
            assertThat(sink.checkpoints().checkpoints()).as("checkpoints were taken along the way").isPositive();
        }
        BlockIndex recovered = index();
        Map<Integer, Journal.Cursor> cursors = new HashMap<>();
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            JournalRecovery.Result result = JournalRecovery.recover(journal, recovered, registry,
                    sink(recovered, journal, 150).checkpoints(), cursors::put);
            assertThat(result.checkpoints()).isPositive();
            assertThat(result.records()).as("records after the checkpoints were replayed").isPositive();
        }
        assertSameAnswers(live, recovered, fleet);
        for (int e = 0; e < ENGINES; e++) {
            Journal.Cursor cursor = cursors.get(e);
            assertThat(cursor.incarnation()).isEqualTo(fleet.incarnation[e]);
            long last = fleet.sequence[e] - 1;
            assertThat(cursor.sequence()).isEqualTo(last < 0 ? LogRecord.RESET : last);
            assertThat(live.appliedSequence(e)).isEqualTo(recovered.appliedSequence(e));
        }
        assertThat(live.stats().counts().evictedBlocks).as("the quota made the fleet evict").isPositive();
    }

    @Test
    @Tag("slow")
    void aRecoveredBrokerGoesOnWritingAndRecoversAgain() {
        Fleet fleet = new Fleet();
        BlockIndex live = index();
        try (Journal journal = Journal.open(dir, Journal.Sync.BATCH)) {
            fleet.run(sink(live, journal, 100).applier(), 1_500);
        }
        try (Journal journal = Journal.open(dir, Journal.Sync.BATCH)) {
            BlockIndex second = index();
            Journaled sink = sink(second, journal, 100);
            JournalRecovery.recover(journal, second, registry, sink.checkpoints(), (id, cursor) -> { });
            // The recovered broker journals on; the live index takes the same batches without a journal.
            fleet.run(new Tee(sink.applier(), BatchApplier.indexOnly(live)), 1_500);
        }
        BlockIndex third = index();
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            JournalRecovery.recover(journal, third, registry, sink(third, journal, 100).checkpoints(),
                    (id, cursor) -> { });
        }
        assertSameAnswers(live, third, fleet);
    }

    /** Sends every batch to two sinks. */
    private record Tee(IngestSink first, IngestSink second) implements IngestSink {
        @Override
        public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch, long fingerprint,
                GroupKinds kinds) {
            first.onBatch(engineId, incarnation, sequence, batch, fingerprint, kinds);
            second.onBatch(engineId, incarnation, sequence, batch, fingerprint, kinds);
        }

        @Override
        public void onReset(int engineId, long incarnation, ResetReason reason) {
            first.onReset(engineId, incarnation, reason);
            second.onReset(engineId, incarnation, reason);
        }

        @Override
        public void onUnknownHistory(int engineId, long incarnation, long from, long to) {
        }
    }

    @Test
    void retentionKeepsEachBoundWhileBatchesArriveAndNeverTrimsPastACheckpoint() {
        Fleet fleet = new Fleet();
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            Journaled sink = sink(index(), journal, 200);
            JournalTrimmer byCount = new JournalTrimmer(journal, sink.checkpoints(),
                    new JournalTrimmer.Retention(0, 0, 500), clock::get);
            for (int round = 0; round < 20; round++) {
                fleet.run(sink.applier(), 300);
                clock.addAndGet(1_000);
                byCount.trim();
                long kept = journal.nextSequence() - journal.firstSequence();
                assertThat(journal.firstSequence()).as("never past the first record an engine needs")
                        .isLessThanOrEqualTo(sink.checkpoints().trimFloor());
                if (round > 3) {
                    // Over the bound only while a checkpoint it waits for is due: at most one policy period more.
                    assertThat(kept).as("round %d", round).isLessThanOrEqualTo(500 + 200L * ENGINES);
                }
            }
            assertThat(byCount.trimmedRecords()).isPositive();

            JournalTrimmer byAge = new JournalTrimmer(journal, sink.checkpoints(),
                    new JournalTrimmer.Retention(0, 5_000, 0), clock::get);
            for (int round = 0; round < 12; round++) {
                fleet.run(sink.applier(), 100);
                clock.addAndGet(1_000);
                byAge.trim();
            }
            long oldestKept = journal.sequenceAt(clock.get() - 5_000 - 1_000);
            assertThat(journal.firstSequence())
                    .isGreaterThanOrEqualTo(Math.min(oldestKept, sink.checkpoints().trimFloor()));

            JournalTrimmer bySize = new JournalTrimmer(journal, sink.checkpoints(),
                    new JournalTrimmer.Retention(64 * 1024, 0, 0), clock::get);
            fleet.run(sink.applier(), 2_000);
            long before = journal.logBytes();
            bySize.trim();
            fleet.run(sink.applier(), 2_000);
            bySize.trim();
            assertThat(before).as("the log grew past the size bound").isGreaterThan(64 * 1024);
            assertThat(journal.firstSequence()).isGreaterThan(1);
        }
    }

    @Test
    void aCheckpointHoldsTheLogUntilTheEngineIsCheckpointedAgain() {
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            Fleet fleet = new Fleet();
            // Never due by count or time: only the trimmer's hurry gets checkpoints taken.
            Journaled sink = sink(index(), journal, Long.MAX_VALUE);
            JournalTrimmer trimmer = new JournalTrimmer(journal, sink.checkpoints(),
                    new JournalTrimmer.Retention(0, 0, 10), clock::get);
            fleet.run(sink.applier(), 500);
            trimmer.trim();
            assertThat(journal.firstSequence()).as("no engine has a checkpoint yet: nothing may go").isEqualTo(1);
            assertThat(trimmer.heldByCheckpoints()).isOne();
            fleet.run(sink.applier(), 500);
            trimmer.trim();
            assertThat(journal.firstSequence()).as("checkpoints taken on request let the log go")
                    .isGreaterThan(1).isLessThanOrEqualTo(sink.checkpoints().trimFloor());
        }
    }

    @Test
    void startUpRefusesForeignOtherFormatAndDamagedStoresNamingTheWayOut() throws Exception {
        Path foreign = Files.createDirectories(dir.resolve("foreign"));
        Files.writeString(foreign.resolve("notes.txt"), "not a journal");
        assertThatThrownBy(() -> Journal.open(foreign, Journal.Sync.NONE))
                .isInstanceOf(JournalException.class).hasMessageContaining("holds no kvbroker journal");

        Path damaged = dir.resolve("damaged");
        Journal.open(damaged, Journal.Sync.NONE).close();
        try (var files = Files.list(damaged)) {
            for (Path file : files.filter(f -> f.getFileName().toString().startsWith("MANIFEST")).toList()) {
                Files.write(file, new byte[] {1, 2, 3});
            }
        }
        assertThatThrownBy(() -> Journal.open(damaged, Journal.Sync.NONE))
                .isInstanceOf(JournalException.class).hasMessageContaining("journal.startFresh=true");

        Path old = dir.resolve("old");
        Journal.open(old, Journal.Sync.NONE).close();
        try (org.rocksdb.Options options = new org.rocksdb.Options();
                org.rocksdb.RocksDB db = openDefault(old)) {
            db.put("format".getBytes(), java.nio.ByteBuffer.allocate(4).putInt(99).array());
        }
        assertThatThrownBy(() -> Journal.open(old, Journal.Sync.NONE))
                .hasMessageContaining("format 99").hasMessageContaining("journal.startFresh=true");

        Journal.destroy(old);
        try (Journal fresh = Journal.open(old, Journal.Sync.NONE)) {
            assertThat(fresh.nextSequence()).isOne();
        }
    }

    @Test
    void aJournalInUseIsNeitherClearedByStartFreshNorOpenedTwice() {
        Fleet fleet = new Fleet();
        long written;
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            Journaled sink = sink(index(), journal, 150);
            fleet.run(sink.applier(), 500);
            for (boolean startFresh : new boolean[] {true, false}) {
                assertThatThrownBy(() -> Journal.open(dir, Journal.Sync.NONE, startFresh))
                        .as("startFresh=" + startFresh).isInstanceOf(JournalException.class)
                        .hasMessageStartingWith("another kvbroker (in this same process) holds journal.dir " + dir
                                + ": stop it, or point this one at another directory");
            }
            assertThatThrownBy(() -> Journal.destroy(dir)).hasMessageContaining("holds journal.dir");
            // The holder goes on journaling as if nothing happened.
            fleet.run(sink.applier(), 500);
            journal.flush();
            journal.awaitWrites();
            written = journal.nextSequence() - 1;
        }
        try (Journal reopened = Journal.open(dir, Journal.Sync.NONE)) {
            assertThat(reopened.nextSequence() - 1).as("every record is still there").isEqualTo(written);
            assertThat(reopened.record(1)).isNotNull();
        }
        try (Journal fresh = Journal.open(dir, Journal.Sync.NONE, true)) {
            assertThat(fresh.nextSequence()).as("a journal nobody holds is cleared by startFresh").isOne();
        }
    }

    private static org.rocksdb.RocksDB openDefault(Path path) throws org.rocksdb.RocksDBException {
        List<org.rocksdb.ColumnFamilyDescriptor> families = new ArrayList<>();
        for (byte[] name : org.rocksdb.RocksDB.listColumnFamilies(new org.rocksdb.Options(), path.toString())) {
            families.add(new org.rocksdb.ColumnFamilyDescriptor(name));
        }
        return org.rocksdb.RocksDB.open(new org.rocksdb.DBOptions(), path.toString(), families, new ArrayList<>());
    }
}
