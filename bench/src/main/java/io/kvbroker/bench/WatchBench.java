package io.kvbroker.bench;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.watch.ChangeFeed;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Watch delivery lag, from an engine stamping a batch to a watcher receiving it over gRPC, with 1 and with 50
 * watchers, while a fleet of engines publishes into a whole broker ({@link BrokerDaemon}, journal on) over real
 * ZeroMQ. Usage: {@code WatchBench [--quick] [--out DIR]}.
 *
 * <p>Design note: the watchers are plain async stubs, one channel each (as separate gateways would have), that only
 * time each batch and count it: the figure is the broker's delivery, not a client's apply. The floor is the lag to
 * the index having applied a batch, read by polling the change feed's next sequence and matching applied batches to
 * published ones in order (exact while ingest keeps up, as the engines publish in turn). Engines, broker and watchers
 * share this machine's 2 cores, so the figures are an upper bound of what a broker on its own machine would show.
 */
public final class WatchBench {
    private static final int ENGINES = 100;
    private static final int STEPS_PER_SECOND = 20;
    private static final int[] WATCHERS = {1, 50};
    private static final List<String> BROKER_THREADS = List.of("kvbroker-ingest", "kvbroker-journal",
            "kvbroker-watch-", "kvbroker-grpc-");

    /** Held so the level stays set: the server logs every stream the bench cancels at the end of a run. */
    private static final java.util.logging.Logger STREAM_ERRORS = java.util.logging.Logger.getLogger(
            "io.grpc.netty.shaded.io.grpc.netty.NettyServerHandler");

    private WatchBench() {
    }

    /** One measured run: lag to the watchers and to the index, and what flowed meanwhile. */
    record Result(int watchers, double seconds, Histogram lagMicros, Histogram appliedMicros, long batchesDelivered,
            long streamErrors, double ingestBatchesPerSec, double ingestEventsPerSec, double processCores,
            double brokerCores) {
    }

    public static void main(String[] args) throws Exception {
        boolean quick = List.of(args).contains("--quick");
        Path out = BenchReport.outDir(args);
        STREAM_ERRORS.setLevel(java.util.logging.Level.SEVERE);
        double warmupSeconds = quick ? 2 : 5;
        double measureSeconds = quick ? 4 : 20;
        String loadBefore = BenchReport.loadAverage();
        Path work = Files.createTempDirectory("kvbroker-watch-bench");
        List<Result> results = new ArrayList<>();
        try (StampingEngines engines = new StampingEngines(ENGINES, STEPS_PER_SECOND, 7)) {
            Path yaml = work.resolve("engines.yaml");
            Files.writeString(yaml, engines.staticEnginesYaml());
            BrokerConfig config = ConfigLoader.load(Optional.of(yaml), Map.of(), Map.of("grpc.port", "0",
                    "grpc.host", "127.0.0.1", "metrics.port", "0", "log.statusIntervalMs", "3600000",
                    "journal.dir", work.resolve("journal").toString()));
            BrokerDaemon daemon = new BrokerDaemon(config);
            daemon.start();
            try {
                // Give the SUB sockets time to connect: a PUB drops what it sends before a subscriber joins.
                Thread.sleep(1_000);
                AppliedProbe applied = new AppliedProbe(daemon.feed(), engines);
                engines.start();
                applied.thread.start();
                try {
                    for (int watchers : WATCHERS) {
                        results.add(run(daemon, engines, applied, watchers, warmupSeconds, measureSeconds));
                    }
                } finally {
                    applied.close();
                }
                long ingested = ingested(daemon, Counter.BATCHES);
                System.out.printf(Locale.ROOT, "published %,d batches, ingested %,d, feed %,d, gaps %d%n",
                        engines.published(), ingested, daemon.feed().next() - applied.feedStart,
                        ingested(daemon, Counter.GAPS));
            } finally {
                daemon.stop();
            }
        } finally {
            deleteTree(work);
        }
        String command = "scripts/bench watch" + (quick ? " --quick" : "");
        String section = section(results, command, warmupSeconds, measureSeconds, loadBefore,
                BenchReport.loadAverage());
        System.out.print(section);
        BenchReport.writeSection(out, "Watch", section);
        Files.createDirectories(out.resolve("bench/results"));
        Files.writeString(out.resolve("bench/results/watch.json"), json(results, command));
    }

    /** Opens {@code count} streams, lets them catch up and warm, then measures for {@code measureSeconds}. */
    private static Result run(BrokerDaemon daemon, StampingEngines engines, AppliedProbe applied, int count,
            double warmupSeconds, double measureSeconds) throws InterruptedException {
        Recorder lag = new Recorder(3_600_000_000L, 3);
        AtomicLong delivered = new AtomicLong();
        AtomicLong errors = new AtomicLong();
        List<ManagedChannel> channels = new ArrayList<>();
        try {
            for (int i = 0; i < count; i++) {
                ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", daemon.grpcPort())
                        .usePlaintext().directExecutor().maxInboundMessageSize(64 << 20).build();
                channels.add(channel);
                KvIndexServiceGrpc.newStub(channel).watch(WatchRequest.getDefaultInstance(),
                        new LagObserver(lag, delivered, errors));
            }
            Thread.sleep((long) (warmupSeconds * 1000));
            ThreadMXBean threads = ManagementFactory.getThreadMXBean();
            com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                    ManagementFactory.getOperatingSystemMXBean();
            long batchesBefore = ingested(daemon, Counter.BATCHES);
            long eventsBefore = ingested(daemon, Counter.BLOCK_EVENTS);
            long processCpuBefore = os.getProcessCpuTime();
            long brokerCpuBefore = brokerCpuNanos(threads);
            long start = System.nanoTime();
            lag.reset();
            applied.recorder.reset();
            delivered.set(0);
            errors.set(0);
            Thread.sleep((long) (measureSeconds * 1000));
            Histogram lagMicros = lag.getIntervalHistogram();
            Histogram appliedMicros = applied.recorder.getIntervalHistogram();
            long batches = delivered.get();
            double seconds = (System.nanoTime() - start) / 1e9;
            Result result = new Result(count, seconds, lagMicros, appliedMicros, batches, errors.get(),
                    (ingested(daemon, Counter.BATCHES) - batchesBefore) / seconds,
                    (ingested(daemon, Counter.BLOCK_EVENTS) - eventsBefore) / seconds,
                    (os.getProcessCpuTime() - processCpuBefore) / 1e9 / seconds,
                    (brokerCpuNanos(threads) - brokerCpuBefore) / 1e9 / seconds);
            System.out.printf(Locale.ROOT, "%2d watchers: lag p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms;"
                    + " applied p99 %.2f ms; %,.0f batches/s delivered, %d errors; ingest %,.0f batches/s, %,.0f"
                    + " block events/s; CPU %.2f cores (broker threads %.2f)%n", count, ms(lagMicros, 50),
                    ms(lagMicros, 99), ms(lagMicros, 99.9), lagMicros.getMaxValue() / 1e3, ms(appliedMicros, 99),
                    batches / seconds, errors.get(), result.ingestBatchesPerSec(), result.ingestEventsPerSec(),
                    result.processCores(), result.brokerCores());
            return result;
        } finally {
            for (ManagedChannel channel : channels) {
                channel.shutdownNow();
            }
            for (ManagedChannel channel : channels) {
                channel.awaitTermination(5, TimeUnit.SECONDS);
            }
        }
    }

    /** One watcher: times every batch of every {@code changes} message; snapshots and the rest only pass by. */
    private static final class LagObserver implements StreamObserver<WatchResponse> {
        private final Recorder lag;
        private final AtomicLong delivered;
        private final AtomicLong errors;

        LagObserver(Recorder lag, AtomicLong delivered, AtomicLong errors) {
            this.lag = lag;
            this.delivered = delivered;
            this.errors = errors;
        }

        @Override
        public void onNext(WatchResponse response) {
            if (!response.hasChanges()) {
                return;
            }
            long now = StampingEngines.nowMicros();
            List<EngineBatch> batches = response.getChanges().getBatchesList();
            for (EngineBatch batch : batches) {
                // 0: a reset, or a batch read back from the journal, which has no engine time.
                if (batch.getEngineTimeMicros() != 0) {
                    lag.recordValue(Math.max(1, now - batch.getEngineTimeMicros()));
                }
            }
            delivered.addAndGet(batches.size());
        }

        @Override
        public void onError(Throwable t) {
            if (!(t instanceof io.grpc.StatusRuntimeException e && e.getStatus().getCode()
                    == io.grpc.Status.Code.CANCELLED)) {
                errors.incrementAndGet();
                System.out.println("watch stream ended: " + t);
            }
        }

        @Override
        public void onCompleted() {
        }
    }

    /**
     * Polls the change feed every 100 µs and times each newly applied batch against the publish time of the batch
     * sent in the same place in order: the floor under the watchers' lag (what ingest, decoding, the journal and the
     * index take), to within the polling interval.
     */
    private static final class AppliedProbe implements AutoCloseable {
        final Recorder recorder = new Recorder(3_600_000_000L, 3);
        final long feedStart;
        final Thread thread;
        private volatile boolean running = true;

        AppliedProbe(ChangeFeed feed, StampingEngines engines) {
            feedStart = feed.next();
            thread = new Thread(() -> {
                long seen = feedStart;
                while (running) {
                    LockSupport.parkNanos(100_000);
                    long next = feed.next();
                    long now = StampingEngines.nowMicros();
                    long published = engines.published();
                    for (long s = seen; s < next; s++) {
                        long index = s - feedStart;
                        if (index < published) {
                            recorder.recordValue(Math.max(1, now - engines.publishedMicros(index)));
                        }
                    }
                    seen = next;
                }
            }, "bench-applied-probe");
            thread.setDaemon(true);
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            thread.join(2_000);
        }
    }

    private static long ingested(BrokerDaemon daemon, Counter counter) {
        long total = 0;
        for (EngineStream stream : daemon.ingest().streams()) {
            total += stream.counters().get(counter);
        }
        return total;
    }

    /** CPU of the broker's own threads; gRPC's network threads are shared with the watchers and left out. */
    private static long brokerCpuNanos(ThreadMXBean threads) {
        long total = 0;
        for (ThreadInfo info : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (info != null && BROKER_THREADS.stream().anyMatch(info.getThreadName()::startsWith)) {
                total += Math.max(0, threads.getThreadCpuTime(info.getThreadId()));
            }
        }
        return total;
    }

    private static double ms(Histogram micros, double percentile) {
        return micros.getValueAtPercentile(percentile) / 1e3;
    }

    private static void deleteTree(Path root) throws java.io.IOException {
        try (var paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }

    private static String section(List<Result> results, String command, double warmupSeconds,
            double measureSeconds, String loadBefore, String loadAfter) {
        StringBuilder md = new StringBuilder();
        md.append(BenchReport.writtenBy(command)).append(".\n\n");
        md.append(String.format(Locale.ROOT, "Watch delivery lag: from an engine stamping a batch (wall clock, µs) to"
                + " a watcher receiving the `changes`\nmessage that carries it, per batch, every watcher's batches"
                + " counted (HdrHistogram, ms). A whole broker runs in\nprocess as `kvbroker serve` runs it"
                + " (BrokerDaemon, journal on in a temporary folder, default watch settings),\nfed over ZeroMQ by %d"
                + " engines publishing the simulator's workload at %d batches/s each, spread evenly in\ntime and"
                + " stamped when sent (the simulator's own engines stamp synthetic times). Watchers are plain async"
                + "\ngRPC stubs, one channel each, that time and count batches without applying them; each starts"
                + " with a whole\nsnapshot, then %.0f s of warm-up, then %.0f s measured. Floor (`applied`): the lag"
                + " to the index having\napplied the batch (journal and index written, change feed advanced), polled"
                + " every 100 µs. `CPU` is the\nwhole JVM (engines, broker and watchers) in cores; `broker threads`"
                + " counts ingest, journal, watch\nsenders and gRPC handlers, not the network threads the watchers"
                + " share. All share the 2 cores; the\nmachine's load average was %s before the run and %s after"
                + " it.\n\n", ENGINES, STEPS_PER_SECOND, warmupSeconds, measureSeconds, loadBefore, loadAfter));
        md.append("| watchers | lag p50 | p99 | p99.9 | max | floor (applied) p50 | floor p99 | batches delivered/s"
                + " (all watchers) | stream errors | ingest batches/s | ingest block events/s | CPU, cores |"
                + " broker threads, cores | target |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Result r : results) {
            md.append(String.format(Locale.ROOT, "| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %,.0f | %d | %,.0f"
                    + " | %,.0f | %.2f | %.2f | p99 <= 10 ms |%n", r.watchers(), ms(r.lagMicros(), 50),
                    ms(r.lagMicros(), 99), ms(r.lagMicros(), 99.9), r.lagMicros().getMaxValue() / 1e3,
                    ms(r.appliedMicros(), 50), ms(r.appliedMicros(), 99), r.batchesDelivered() / r.seconds(),
                    r.streamErrors(), r.ingestBatchesPerSec(), r.ingestEventsPerSec(), r.processCores(),
                    r.brokerCores()));
        }
        return md.toString();
    }

    private static String json(List<Result> results, String command) {
        List<String> entries = new ArrayList<>();
        for (Result r : results) {
            entries.add(String.format(Locale.ROOT, "    {\"watchers\": %d, \"lagP50ms\": %.3f, \"lagP99ms\": %.3f,"
                    + " \"lagP999ms\": %.3f, \"lagMaxMs\": %.3f, \"appliedP50ms\": %.3f, \"appliedP99ms\": %.3f,"
                    + " \"batchesDeliveredPerSec\": %.0f, \"streamErrors\": %d, \"ingestBatchesPerSec\": %.0f,"
                    + " \"ingestBlockEventsPerSec\": %.0f, \"processCores\": %.2f, \"brokerThreadCores\": %.2f}",
                    r.watchers(), ms(r.lagMicros(), 50), ms(r.lagMicros(), 99), ms(r.lagMicros(), 99.9),
                    r.lagMicros().getMaxValue() / 1e3, ms(r.appliedMicros(), 50), ms(r.appliedMicros(), 99),
                    r.batchesDelivered() / r.seconds(), r.streamErrors(), r.ingestBatchesPerSec(),
                    r.ingestEventsPerSec(), r.processCores(), r.brokerCores()));
        }
        return BenchReport.json(command, "watch", entries);
    }
}
