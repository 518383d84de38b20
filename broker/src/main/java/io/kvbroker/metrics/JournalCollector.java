package io.kvbroker.metrics;

import io.kvbroker.journal.CheckpointScheduler;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.JournalTrimmer;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import java.util.function.Supplier;

/**
 * The RocksDB journal's size, positions, trimming, checkpoints and write failures ({@code kvbroker_journal_*}), read
 * once per scrape, and the histogram of its group writes, fed by the journal's writer thread.
 *
 * <p>Design note: the journal opens when the daemon starts, after this is made, so it is looked up at each scrape;
 * before it opens only the (empty) histogram appears. A group write is one WriteBatch of up to 256 batches' records
 * and their engines' cursors; its duration is what bounds how fast ingest can apply, since the applying thread waits
 * once four writes are in flight.
 */
public final class JournalCollector implements MultiCollector {
    private static final String P = "kvbroker_journal_";
    /** From 50 µs (a small group into the memtable) to a second (a stalled disk). */
    private static final double[] WRITE_BOUNDS_SECONDS = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
        0.01, 0.025, 0.1, 1};

    private final Supplier<Journal> journal;
    private final Supplier<JournalTrimmer> trimmer;
    private final CheckpointScheduler checkpoints;
    private final Histogram writeSeconds = Histogram.builder().name(P + "write_seconds")
            .help("Duration of each group write (records of up to 256 batches and their engines' cursors, encoded and"
                    + " written to RocksDB in one WriteBatch).")
            .classicOnly().classicUpperBounds(WRITE_BOUNDS_SECONDS).withoutExemplars().build();

    /**
     * @param journal the open journal, or null before it opens
     * @param trimmer the journal's trimmer, or null before it starts
     */
    public JournalCollector(Supplier<Journal> journal, Supplier<JournalTrimmer> trimmer,
            CheckpointScheduler checkpoints) {
        this.journal = journal;
        this.trimmer = trimmer;
        this.checkpoints = checkpoints;
    }

    /** Records one group write's duration (the journal's writer thread). */
    public void groupWritten(long nanos) {
        writeSeconds.observe(nanos / 1e9);
    }

    void register(PrometheusRegistry registry) {
        registry.register(writeSeconds);
        registry.register(this);
    }

    @Override
    public MetricSnapshots collect() {
        Journal open = journal.get();
        if (open == null) {
            return MetricSnapshots.of();
        }
        Families f = new Families();
        Labels none = Labels.EMPTY;
        long first = open.firstSequence();
        long next = open.nextSequence();
        f.gauge(P + "log_bytes", "Approximate size of the replay log on disk and in memory.", none, open.logBytes());
        f.gauge(P + "first_sequence", "The first broker sequence still in the log.", none, first);
        f.gauge(P + "next_sequence", "The broker sequence the next batch gets.", none, next);
        f.gauge(P + "records", "Records the log keeps (next minus first sequence).", none, Math.max(0, next - first));
        f.gauge(P + "trim_floor_sequence", "The first record some engine still needs after its checkpoint: the log"
                + " is never trimmed past it.", none, checkpoints.trimFloor());
        f.counter(P + "checkpoints", "Engine index checkpoints written.", none, checkpoints.checkpoints());
        f.counter(P + "write_failures", "Journal write attempts that failed (a full disk, an I/O error); each is"
                + " retried until it succeeds, ingest waiting meanwhile.", none, open.writeFailures());
        f.counter(P + "append_waits", "Times ingest waited for the journal's writer (the disk behind or failing): a"
                + " slow disk shows here before anything is lost.", none, open.appendWaits());
        f.counter(P + "reopens", "Times the journal was closed and reopened because its writes kept failing while the"
                + " disk had room again (a write-ahead log that hit a full disk): each ended a stall.", none,
                open.reopens());
        long stalledSince = open.stalledSinceMs();
        f.gauge(P + "stalled", "1 while journal writes fail and ingest waits for them (free disk space), else 0.",
                none, stalledSince == 0 ? 0 : 1);
        JournalTrimmer trims = trimmer.get();
        if (trims != null) {
            f.counter(P + "trimmed_records", "Records trimmed from the head of the log for retention.", none,
                    trims.trimmedRecords());
            f.counter(P + "trims_held", "Trim passes that wanted to trim past an engine's checkpoint and waited for"
                    + " it instead.", none, trims.heldByCheckpoints());
        }
        return f.build();
    }
}
