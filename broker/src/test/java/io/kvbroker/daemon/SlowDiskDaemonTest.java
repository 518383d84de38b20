package io.kvbroker.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.core.Xxh64;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineCounters;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.JournalFaults;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.sim.Workload;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import io.kvbroker.testing.SimulatedBrokers;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A slow disk under a whole daemon's journal while four simulated engines publish 1,000 batches/s each: every journal
 * write takes 200 ms longer, so the journal takes at most 256 batches per write (1,280 a second) and the ingest thread,
 * waiting behind the journal's in-flight bound, falls behind the engines. The network path fills (the engines' send
 * buffers are capped at 16 KiB and ingest's receive high-water mark is 100, so in seconds rather than minutes), the
 * engines' publishers drop live batches, and ingest finds the gaps and replays them from the engines' buffers. The
 * engines whose buffers keep 60,000 batches end exact, with every batch they published in the log once, in order; the
 * one whose buffer keeps 300 is voided, and each batch missing from its log is counted lost (on /metrics too), never
 * silently missing. Once the disk is fast again, every engine catches up.
 */
@Tag("slow")
class SlowDiskDaemonTest {
    private static final int ENGINES = 4;
    private static final int SMALL = 3;
    private static final int SMALL_BUFFER = 300;
    private static final int LARGE_BUFFER = 60_000;
    private static final int STEPS_PER_SECOND = 1_000;
    /** A third of what the engines publish gets through the journal: ingest must fall behind. */
    private static final long SLOW_WRITE_MS = 200;
    private static final Duration WAIT = Duration.ofSeconds(40);

    @TempDir
    Path dir;

    /**
     * What ingest counted for one engine from the moment the disk slowed, and the most it fell behind while slow;
     * {@code lostBefore} is what its buffer no longer held at first contact, {@code lost} all it counted lost.
     */
    private record Seen(long behind, long gaps, long replays, long replayed, long timeouts, long voids,
            long lostBefore, long lost) {
        static Seen of(long behind, long[] before, long[] after) {
            return new Seen(behind, since(Counter.GAPS, before, after), since(Counter.REPLAYS_REQUESTED, before, after),
                    since(Counter.REPLAYED_BATCHES, before, after), since(Counter.REPLAY_TIMEOUTS, before, after),
                    since(Counter.VOIDS, before, after), before[Counter.UNKNOWN_HISTORY_BATCHES.ordinal()],
                    after[Counter.UNKNOWN_HISTORY_BATCHES.ordinal()]);
        }

        private static long since(Counter counter, long[] before, long[] after) {
            return after[counter.ordinal()] - before[counter.ordinal()];
        }
    }

    @Test
    void aSlowJournalHoldsIngestBackAndEveryBatchEndsInTheLogOnceOrCountedLost() throws Exception {
        List<SimulatedEngine.Options> typical = Simulator.fleet(ENGINES, 71);
        List<SimulatedEngine.Options> fleet = IntStream.range(0, ENGINES)
                .mapToObj(i -> typical.get(i).withBufferSteps(i == SMALL ? SMALL_BUFFER : LARGE_BUFFER)).toList();
        int metricsPort = Ports.freeRange(1);
        Path journalDir = dir.resolve("journal");
        long[] next;
        List<Seen> seen = new ArrayList<>();
        long appendWaits;
        long slowMs;
        List<List<Double>> published = new ArrayList<>();
        try (Simulator simulator = new Simulator(fleet, 0, STEPS_PER_SECOND).start()) {
            simulator.call(engines -> {
                engines.forEach(engine -> {
                    engine.limitSendQueue(100);
                    engine.limitSendBuffer(16 * 1024);
                });
                return null;
            });
            BrokerDaemon daemon = SimulatedBrokers.start(simulator, dir, "slow-disk", Map.of(
                    "journal.dir", journalDir.toString(), "ingest.receiveHighWaterMark", "100",
                    "metrics.port", String.valueOf(metricsPort), "metrics.host", "127.0.0.1"));
            try {
                ZmqIngest ingest = daemon.ingest();
                List<EngineStream> streams = new ArrayList<>();
                Await.until("every engine's stream", WAIT, () -> ingest.streams().size() == ENGINES);
                for (SimulatedEngine.Options o : fleet) {
                    int id = daemon.registry().live().stream().filter(e -> e.spec().key().pod().equals(o.pod()))
                            .findFirst().orElseThrow().id();
                    streams.add(ingest.stream(id));
                }
                // First contact replays each engine's history so far; the disk slows once that is applied.
                awaitCursors("every engine's history so far applied", streams, nextSequences(simulator));
                long[][] before = counters(streams);
                Journal journal = daemon.journal().orElseThrow();
                long waitsBefore = journal.appendWaits();

                long slowSince = System.nanoTime();
                long[] behind = new long[ENGINES];
                JournalFaults.slowWrites(journal, SLOW_WRITE_MS);
                try {
                    Await.until("live batches dropped on the way, and the small buffer outrun", WAIT, () -> {
                        // The most batches each engine had published beyond what was applied, for the report.
                        simulator.call(engines -> {
                            for (int i = 0; i < ENGINES; i++) {
                                behind[i] = Math.max(behind[i], engines.get(i).nextSequence() - 1
                                        - streams.get(i).cursor());
                            }
                            return null;
                        });
                        return IntStream.range(0, ENGINES).allMatch(i -> i == SMALL
                                ? counter(streams, i, Counter.VOIDS) > 0
                                : counter(streams, i, Counter.GAPS) > before[i][Counter.GAPS.ordinal()]);
                    });
                } catch (AssertionError e) {
                    throw new AssertionError(e.getMessage() + "; behind " + Arrays.toString(behind)
                            + ", before " + Arrays.deepToString(before) + ", now " + streams.stream()
                            .map(x -> x.state() + " at " + x.cursor() + " gaps " + x.counters().get(Counter.GAPS)
                                    + " voids " + x.counters().get(Counter.VOIDS)).toList(), e);
                }
                appendWaits = journal.appendWaits() - waitsBefore;
                slowMs = (System.nanoTime() - slowSince) / 1_000_000;

                JournalFaults.slowWrites(journal, 0);
                awaitCursors("what was published while the disk was slow applied", streams,
                        nextSequences(simulator));
                simulator.setStepping(false);
                next = nextSequences(simulator);
                awaitCursors("every engine caught up", streams, next);

                assertThat(appendWaits).as("ingest waited behind the journal's in-flight bound").isPositive();
                String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                        + metricsPort + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
                long[][] after = counters(streams);
                for (int i = 0; i < ENGINES; i++) {
                    Seen engine = Seen.of(behind[i], before[i], after[i]);
                    seen.add(engine);
                    EngineCounters c = streams.get(i).counters();
                    assertThat(c.get(Counter.RESTARTS_BY_SEQUENCE) + c.get(Counter.RESTARTS_BY_FINGERPRINT))
                            .as("engine %d taken for restarted", i).isZero();
                    assertThat(c.get(Counter.DECODE_ERRORS)).isZero();
                    assertThat(sample(metrics, "kvbroker_engine_lost_batches_total", fleet.get(i).pod()))
                            .as("engine %d's loss on /metrics", i).isEqualTo(engine.lost());
                    assertThat(engine.replayed()).as("engine %d replayed since the disk slowed", i).isPositive();
                    if (i != SMALL) {
                        assertThat(engine.voids()).as("engine %d voids", i).isZero();
                        assertThat(engine.lost()).as("engine %d lost", i).isZero();
                    }
                }
                assertThat(sample(metrics, "kvbroker_journal_append_waits_total", null)).isPositive();
                for (int i = 0; i < ENGINES; i++) {
                    int engine = i;
                    published.add(simulator.call(engines -> new ArrayList<>(engines.get(engine)
                            .publishedTimestamps())));
                }
            } finally {
                daemon.stop();
            }
        }
        assertTheLogHoldsEveryBatchOnceOrCountedLost(journalDir, fleet, published, next, seen);
        System.out.printf("slow disk (+%d ms a write, for %d ms): ingest waited %d times behind the journal; per"
                + " engine %s; published %s%n", SLOW_WRITE_MS, slowMs, appendWaits, seen,
                Arrays.toString(next));
    }

    /**
     * Reads the closed journal back: each engine's records are the batches it published (the payload fingerprints
     * the engine's seed gives), in order, each once; the large buffers' engines have them all and no reset; the small
     * one has a reset per void and misses exactly as many batches as it counted lost.
     */
    private static void assertTheLogHoldsEveryBatchOnceOrCountedLost(Path journalDir,
            List<SimulatedEngine.Options> fleet, List<List<Double>> published, long[] next, List<Seen> seen) {
        Map<String, List<long[]>> logged = new HashMap<>();
        Map<String, Journal.Cursor> cursors;
        try (Journal journal = Journal.open(journalDir, Journal.Sync.INTERVAL)) {
            journal.forEachRecord(1, (sequence, record) -> logged.computeIfAbsent(record.engine(),
                    name -> new ArrayList<>()).add(new long[] {record.sequence(), record.fingerprint()}));
            cursors = journal.cursors();
        }
        for (int i = 0; i < ENGINES; i++) {
            SimulatedEngine.Options o = fleet.get(i);
            String name = o.pod() + "/" + o.rank();
            List<long[]> records = logged.get(name);
            long[] truth = fingerprints(o, published.get(i));
            List<Long> batches = records.stream().filter(r -> r[0] >= 0).map(r -> r[0]).toList();
            for (long[] r : records) {
                if (r[0] >= 0) {
                    assertThat(r[1]).as("engine %d seq %d is the batch it published", i, r[0])
                            .isEqualTo(truth[(int) r[0]]);
                }
            }
            assertThat(cursors.get(name).sequence()).isEqualTo(next[i] - 1);
            long resets = records.size() - batches.size();
            if (i != SMALL) {
                assertThat(resets).as("engine %d resets in the log", i).isZero();
                assertThat(batches).as("engine %d: every batch once, in order", i)
                        .containsExactlyElementsOf(LongStream.range(0, next[i]).boxed().toList());
            } else {
                assertThat(resets).as("a reset per void").isEqualTo(seen.get(i).voids()).isPositive();
                assertThat(batches).as("in order, each once").isSorted().doesNotHaveDuplicates();
                assertThat(batches.get(batches.size() - 1)).isEqualTo(next[i] - 1);
                assertThat(next[i] - batches.size()).as("what is not in the log is what was counted lost")
                        .isEqualTo(seen.get(i).lost());
            }
        }
    }

    /** The payload fingerprints of the batches an engine published, rebuilt from its seed as it encoded them. */
    private static long[] fingerprints(SimulatedEngine.Options o, List<Double> timestamps) {
        Workload workload = new Workload(new SplittableRandom(o.seed()), o.model().hashCode(), o.shape());
        KvEventEncoder encoder = new KvEventEncoder();
        long[] fingerprints = new long[timestamps.size()];
        for (int s = 0; s < fingerprints.length; s++) {
            fingerprints[s] = Xxh64.hash(encoder.encode(new KvEventBatch(timestamps.get(s), o.rank(),
                    workload.step(), 0, 0), o.form()));
        }
        return fingerprints;
    }

    /** Waits until each engine's cursor reaches the last of {@code next[i]} batches (or beyond, still publishing). */
    private static void awaitCursors(String what, List<EngineStream> streams, long[] next)
            throws InterruptedException {
        Await.until(what, WAIT, () -> IntStream.range(0, ENGINES).allMatch(i -> streams.get(i).cursor()
                >= next[i] - 1));
    }

    /** Every counter of every engine, by engine, then by {@link Counter} ordinal. */
    private static long[][] counters(List<EngineStream> streams) {
        return streams.stream().map(stream -> Arrays.stream(Counter.values()).mapToLong(stream.counters()::get)
                .toArray()).toArray(long[][]::new);
    }

    private static long counter(List<EngineStream> streams, int engine, Counter counter) {
        return streams.get(engine).counters().get(counter);
    }

    private static long[] nextSequences(Simulator simulator) {
        return simulator.call(engines -> engines.stream().mapToLong(SimulatedEngine::nextSequence).toArray());
    }

    /** A sample of the text exposition: of one engine's series (by pod), or of an unlabelled one (null). */
    private static double sample(String exposition, String name, String pod) {
        for (String line : exposition.split("\n")) {
            if (line.startsWith(name) && (pod == null ? line.startsWith(name + " ")
                    : line.startsWith(name + "{") && line.contains("engine=\"" + pod + "/"))) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        throw new AssertionError("no " + name + (pod == null ? "" : " of " + pod) + " in /metrics");
    }
}
