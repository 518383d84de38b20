package io.kvbroker.bench;

import io.kvbroker.apply.BatchApplier;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.journal.CheckpointScheduler;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.JournalLog;
import io.kvbroker.journal.JournalRecovery;
import io.kvbroker.journal.LogRecord;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The journal's cost and recovery: a simulated fleet's decoded batches applied to the index alone, then applied and
 * journaled (record and cursor in one RocksDB write per batch, checkpoints between batches) at each durability
 * setting, next to a floor of the same records appended without the index; then the time to recover an index of 10
 * million residencies from its checkpoints and log.
 */
public final class JournalBench {
    private static final int G = 16;

    private JournalBench() {
    }

    public static void main(String[] args) throws Exception {
        boolean quick = List.of(args).contains("--quick");
        Path out = BenchReport.outDir(args);
        Path scratch = Files.createTempDirectory("kvbroker-journal-bench");
        StringBuilder md = new StringBuilder();
        String command = "scripts/bench journal" + (quick ? " --quick" : "");
        md.append(BenchReport.writtenBy(command)).append(". One applying thread;")
                .append(" RocksDB in a temporary folder on the machine's disk.\n\n");

        int engines = quick ? 100 : 200;
        List<KvEventBatch> batches = new ArrayList<>();
        List<Integer> engineOf = new ArrayList<>();
        long blockEvents = IndexBench.generate(engines, quick ? 300 : 1_000, batches, engineOf);
        EngineRegistry registry = registry(1_000);
        double[] plain = new double[3];
        double[] interval = new double[3];
        double[] none = new double[3];
        double[] floor = new double[3];
        List<LogRecord> records = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            long start = System.nanoTime();
            BlockIndex index = index();
            for (int i = 0; i < batches.size(); i++) {
                ResolvedBatch resolved = index.apply(engineOf.get(i), 1, i, batches.get(i), round == 0);
                if (round == 0) {
                    records.add(new LogRecord("engine-" + engineOf.get(i) + "/0", 1, i, i, resolved));
                }
            }
            plain[round] = blockEvents / seconds(start);
            interval[round] = journaled(scratch.resolve("interval-" + round), Journal.Sync.INTERVAL, registry,
                    batches, engineOf, blockEvents);
            none[round] = journaled(scratch.resolve("none-" + round), Journal.Sync.NONE, registry, batches,
                    engineOf, blockEvents);
            Path dir = scratch.resolve("floor-" + round);
            try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
                Journal.Cursor cursor = new Journal.Cursor(1, 1, 1, new byte[2]);
                long begin = System.nanoTime();
                for (LogRecord record : records) {
                    journal.append(record, cursor);
                }
                journal.flush();
                journal.awaitWrites();
                floor[round] = blockEvents / seconds(begin);
            }
            Journal.destroy(dir);
        }
        // fsync per batch is far slower: a shorter run.
        int fsyncBatches = Math.min(batches.size(), quick ? 2_000 : 10_000);
        long fsyncEvents = 0;
        for (int i = 0; i < fsyncBatches; i++) {
            fsyncEvents += batches.get(i).blockEventCount();
        }
        double batchSync = journaled(scratch.resolve("batch"), Journal.Sync.BATCH, registry,
                batches.subList(0, fsyncBatches), engineOf.subList(0, fsyncBatches), fsyncEvents);

        md.append("### Apply with the journal\n\n").append(String.format(Locale.ROOT, "%,d batches of a simulated"
                + " fleet of %d engines (%,d block events: stores with tokens, LRU evictions, offload stores, LoRA,"
                + " hybrid\ngroups), decoded beforehand; best of rounds 2-3. Floor: the same resolved records and a"
                + " cursor appended to the journal\nwithout the index (RocksDB and the record codec alone).%n%n",
                batches.size(), engines, blockEvents));
        md.append("| figure | block events/s | batches/s | vs the index alone | target |\n|---|---|---|---|---|\n");
        double plainBest = best(plain);
        row(md, "index alone (no journal)", plainBest, blockEvents, batches.size(), plainBest, "");
        row(md, "index + journal, sync interval (100 ms, the default)", best(interval), blockEvents, batches.size(),
                plainBest, ">= 1,000,000; cost < 30%");
        row(md, "index + journal, sync none", best(none), blockEvents, batches.size(), plainBest, "");
        row(md, "index + journal, sync batch (fsync each; " + fsyncBatches + " batches)", batchSync, fsyncEvents,
                fsyncBatches, plainBest, "");
        row(md, "floor: journal appends alone", best(floor), blockEvents, batches.size(), plainBest, "");
        double raw = rawRocksDb(scratch.resolve("raw"), records, blockEvents);
        row(md, "floor: raw RocksDB WriteBatches (256 records a batch, WAL, no fsync)", raw, blockEvents,
                batches.size(), plainBest, "");

        // Recovery: 1,000 engines' worth of residencies stored, then restored as at start-up.
        long residencies = quick ? 1_000_000 : 10_000_000;
        Path dir = scratch.resolve("recovery");
        long stored;
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            BlockIndex index = index();
            JournalLog log = new JournalLog(index, registry, new CheckpointScheduler.Policy(1_000, 3_600_000),
                    System::currentTimeMillis);
            log.attach(journal);
            IndexBench.fill(new BatchApplier(index, log, null), 1_000, residencies);
            stored = index.stats().residencies();
        }
        long logBytes = directoryBytes(dir);
        System.gc();
        long begin = System.nanoTime();
        BlockIndex recovered = index();
        JournalRecovery.Result result;
        try (Journal journal = Journal.open(dir, Journal.Sync.NONE)) {
            JournalLog log = new JournalLog(recovered, registry, new CheckpointScheduler.Policy(1_000, 3_600_000),
                    System::currentTimeMillis);
            log.attach(journal);
            result = JournalRecovery.recover(journal, recovered, registry, log.checkpoints(), (id, cursor) -> { });
        }
        double recoverySeconds = seconds(begin);
        md.append(String.format(Locale.ROOT, "%n### Recovery%n%n%,d residencies over 1,000 engines written through"
                + " the journal (checkpoint every 1,000 batches of an engine),\nthen the journal opened and the index"
                + " and cursors restored as at start-up, until the broker would report SERVING.%n%n"
                + "| residencies | journal on disk | checkpoints | log records replayed | recovery | target |%n"
                + "|---|---|---|---|---|---|%n| %,d | %,.0f MB | %,d | %,d | %.2f s | <= 10 s |%n", stored, stored,
                logBytes / 1e6, result.checkpoints(), result.records(), recoverySeconds));
        if (recovered.stats().residencies() != stored) {
            throw new IllegalStateException("recovered " + recovered.stats().residencies() + " of " + stored);
        }
        Journal.destroy(scratch);
        System.out.print(md);
        BenchReport.writeSection(out, "Journal", md.toString());
        BenchReport.writeJson(out, "journal", command, List.of(
                String.format(Locale.ROOT, "    {\"figure\": \"indexAlone\", \"blockEventsPerSec\": %.0f}",
                        plainBest),
                String.format(Locale.ROOT, "    {\"figure\": \"persistedInterval\", \"blockEventsPerSec\": %.0f,"
                        + " \"vsIndexAlone\": %.3f}", best(interval), best(interval) / plainBest),
                String.format(Locale.ROOT, "    {\"figure\": \"persistedNone\", \"blockEventsPerSec\": %.0f}",
                        best(none)),
                String.format(Locale.ROOT, "    {\"figure\": \"rawRocksDb\", \"blockEventsPerSec\": %.0f}", raw),
                String.format(Locale.ROOT, "    {\"figure\": \"recovery\", \"residencies\": %d, \"seconds\": %.2f}",
                        stored, recoverySeconds)));
    }

    /**
     * The floor under the journal's writes: the same encoded records put into a bare RocksDB in WriteBatches of 256
     * (the journal's group size), WAL on and no fsync (as the default's writes between syncs), no column families.
     */
    private static double rawRocksDb(Path dir, List<LogRecord> records, long blockEvents) throws Exception {
        List<byte[]> encoded = new ArrayList<>(records.size());
        for (LogRecord record : records) {
            encoded.add(record.encode());
        }
        org.rocksdb.RocksDB.loadLibrary();
        Files.createDirectories(dir);
        double rate;
        try (org.rocksdb.Options options = new org.rocksdb.Options().setCreateIfMissing(true);
                org.rocksdb.RocksDB db = org.rocksdb.RocksDB.open(options, dir.toString());
                org.rocksdb.WriteOptions write = new org.rocksdb.WriteOptions()) {
            long begin = System.nanoTime();
            for (int from = 0; from < encoded.size(); from += 256) {
                try (org.rocksdb.WriteBatch batch = new org.rocksdb.WriteBatch()) {
                    for (int i = from; i < Math.min(encoded.size(), from + 256); i++) {
                        batch.put(java.nio.ByteBuffer.allocate(8).putLong(i).array(), encoded.get(i));
                    }
                    db.write(write, batch);
                }
            }
            rate = blockEvents / seconds(begin);
        }
        Journal.destroy(dir);
        return rate;
    }

    private static double journaled(Path dir, Journal.Sync sync, EngineRegistry registry, List<KvEventBatch> batches,
            List<Integer> engineOf, long blockEvents) {
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        try (Journal journal = Journal.open(dir, sync)) {
            if (sync == Journal.Sync.INTERVAL) {
                timer.scheduleAtFixedRate(journal::syncWal, 100, 100, TimeUnit.MILLISECONDS);
            }
            BlockIndex index = index();
            JournalLog log = new JournalLog(index, registry, new CheckpointScheduler.Policy(5_000, 60_000),
                    System::currentTimeMillis);
            log.attach(journal);
            BatchApplier sink = new BatchApplier(index, log, null);
            GroupKinds kinds = new GroupKinds();
            long start = System.nanoTime();
            for (int i = 0; i < batches.size(); i++) {
                sink.onBatch(engineOf.get(i), 1, i, batches.get(i), i, kinds);
            }
            // Until the last group is in RocksDB, not just handed to the writer.
            journal.flush();
            journal.awaitWrites();
            return blockEvents / seconds(start);
        } finally {
            timer.shutdownNow();
            Journal.destroy(dir);
        }
    }

    private static BlockIndex index() {
        return new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT);
    }

    private static EngineRegistry registry(int engines) {
        EngineRegistry registry = new EngineRegistry();
        for (int e = 0; e < engines; e++) {
            registry.register(new EngineSpec(new EngineKey("engine-" + e, 0), "m",
                    Endpoint.parse("tcp://127.0.0.1:" + (20_000 + e)), Optional.empty(), ""));
        }
        return registry;
    }

    private static void row(StringBuilder md, String what, double eventsPerSecond, long events, long batches,
            double plain, String target) {
        md.append(String.format(Locale.ROOT, "| %s | %,.0f | %,.0f | %.2f | %s |%n", what, eventsPerSecond,
                eventsPerSecond * batches / events, eventsPerSecond / plain, target));
    }

    private static double best(double[] rounds) {
        return Math.max(rounds[1], rounds[2]);
    }

    private static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    private static long directoryBytes(Path dir) throws java.io.IOException {
        try (var files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
        }
    }
}
