package io.kvbroker.bench;

import io.kvbroker.apply.BatchApplier;
import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.IngestSettings;
import io.kvbroker.ingest.IngestSink;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.journal.CheckpointScheduler;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.JournalLog;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Ingest throughput over real ZeroMQ on loopback: the highest rate kvbroker's ingest sustains without losing a
 * batch, next to the same search against a bare SUB loop (the floor). Usage: {@code IngestBench [--quick] [--out
 * DIR]}.
 *
 * <p>Design note: publishers on one thread replay pre-encoded realistic batches at a paced total rate; each probe
 * doubles the rate until the receiver falls behind (fewer than 97% of the batches arrive, or a gap is seen), so the
 * reported rate is one that held. Sender and receiver share this machine's 2 cores, so CPU-seconds per million block
 * events is the figure that carries to other machines.
 */
public final class IngestBench {
    private static final double HELD = 0.97;

    private IngestBench() {
    }

    /** One probe's figures: what was offered and what the receiving side took in, and its CPU. */
    record Probe(String side, int engines, double offeredBatchesPerSec, double seconds, long batches, long bytes,
            long blockEvents, double cpuSeconds, long gaps) {
        boolean held() {
            return gaps == 0 && batches >= HELD * offeredBatchesPerSec * seconds;
        }

        double mbPerSec() {
            return bytes / seconds / 1e6;
        }

        double batchesPerSec() {
            return batches / seconds;
        }

        double blockEventsPerSec() {
            return blockEvents / seconds;
        }

        double cpuSecondsPerMillionEvents() {
            return blockEvents == 0 ? Double.NaN : cpuSeconds / (blockEvents / 1e6);
        }
    }

    /** The receiving side under test. */
    interface Receiver extends AutoCloseable {
        /** Cumulative batches, bytes, block events, gaps. */
        long[] totals();

        /** Cumulative CPU nanoseconds of the receiving threads. */
        long cpuNanos();

        @Override
        void close() throws Exception;
    }

    /** Publishers on one thread, each a bound PUB sending the payload set in a loop at a paced total rate. */
    static final class Blaster implements AutoCloseable {
        final ZContext context = new ZContext(1);
        final List<ZMQ.Socket> pubs = new ArrayList<>();
        final List<byte[]> payloads;
        final Thread thread;
        volatile double batchesPerSec;
        volatile boolean running = true;

        Blaster(int engines, List<byte[]> payloads) {
            this.payloads = payloads;
            for (int i = 0; i < engines; i++) {
                ZMQ.Socket pub = context.createSocket(SocketType.PUB);
                pub.setSndHWM(100_000);
                pub.setLinger(0);
                pub.bindToRandomPort("tcp://127.0.0.1");
                pubs.add(pub);
            }
            thread = new Thread(this::run, "bench-publishers");
            thread.setDaemon(true);
        }

        List<String> endpoints() {
            return pubs.stream().map(ZMQ.Socket::getLastEndpoint).toList();
        }

        void run() {
            long[] sequence = new long[pubs.size()];
            byte[] topic = "kv@bench@m".getBytes(StandardCharsets.UTF_8);
            int next = 0;
            double rate = 0;
            long start = 0;
            long sent = 0;
            while (running) {
                if (batchesPerSec != rate) {
                    rate = batchesPerSec;
                    start = System.nanoTime();
                    sent = 0;
                }
                if (rate <= 0) {
                    LockSupport.parkNanos(1_000_000);
                    continue;
                }
                long due = start + (long) (sent * 1e9 / rate);
                long wait = due - System.nanoTime();
                if (wait > 50_000) {
                    LockSupport.parkNanos(wait);
                }
                int i = (int) (sent % pubs.size());
                ZMQ.Socket pub = pubs.get(i);
                pub.send(topic, ZMQ.SNDMORE);
                pub.send(WireFrames.sequenceFrame(sequence[i]++), ZMQ.SNDMORE);
                pub.send(payloads.get(next++ % payloads.size()), 0);
                sent++;
            }
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            thread.join(2_000);
            context.close();
        }
    }

    public static void main(String[] args) throws Exception {
        boolean quick = List.of(args).contains("--quick");
        Path out = BenchReport.outDir(args);
        double seconds = quick ? 1 : 2;
        List<byte[]> payloads = Payloads.realisticMix(2048, 42);
        long eventsPerBatch = blockEventsPerBatch(payloads);
        List<Probe[]> results = new ArrayList<>();
        for (int engines : quick ? new int[] {10} : new int[] {1, 10, 100}) {
            // Quick (CI's smoke run): the floor and the whole persisted path only.
            for (String side : quick ? List.of("floor", "ingest+index+journal")
                    : List.of("floor", "ingest", "ingest+index", "ingest+index+journal")) {
                if (engines == 1 && side.contains("+")) {
                    continue;
                }
                results.add(search(side, engines, payloads, eventsPerBatch, seconds, quick ? 40_000 : 20_000));
            }
        }
        for (Probe[] r : results) {
            print(r[0], "held");
            if (r[1] != null) {
                print(r[1], "fell behind");
            }
        }
        String command = "scripts/bench ingest" + (quick ? " --quick" : "");
        BenchReport.writeSection(out, "Ingest", section(results, command, seconds));
        Files.createDirectories(out.resolve("bench/results"));
        Files.writeString(out.resolve("bench/results/ingest.json"), json(results, command));
    }

    private static void print(Probe p, String verdict) {
        System.out.printf(Locale.ROOT, "%-6s %3d engines, offered %8.0f batches/s: %7.1f MB/s %9.0f batches/s"
                + " %11.0f block events/s | %.3f CPU-s per M events | gaps %d | %s%n", p.side(), p.engines(),
                p.offeredBatchesPerSec(), p.mbPerSec(), p.batchesPerSec(), p.blockEventsPerSec(),
                p.cpuSecondsPerMillionEvents(), p.gaps(), verdict);
    }

    /** Doubles the offered rate from {@code from} batches/s until a probe does not hold; returns {held, first not}. */
    static Probe[] search(String side, int engines, List<byte[]> payloads, long eventsPerBatch, double seconds,
            double from) throws Exception {
        try (Blaster blaster = new Blaster(engines, payloads);
                Receiver receiver = side.equals("floor") ? new FloorReceiver(blaster.endpoints(), eventsPerBatch)
                        : new IngestReceiver(blaster.endpoints(), side)) {
            blaster.thread.start();
            Probe held = null;
            for (double rate = from; rate <= 2_000_000; rate *= 2) {
                blaster.batchesPerSec = rate;
                Thread.sleep((long) (Math.min(1, seconds) * 1_000));
                long[] before = receiver.totals();
                long cpuBefore = receiver.cpuNanos();
                long start = System.nanoTime();
                Thread.sleep((long) (seconds * 1000));
                long[] after = receiver.totals();
                double elapsed = (System.nanoTime() - start) / 1e9;
                Probe probe = new Probe(side, engines, rate, elapsed, after[0] - before[0], after[1] - before[1],
                        after[2] - before[2], (receiver.cpuNanos() - cpuBefore) / 1e9, after[3] - before[3]);
                if (!probe.held()) {
                    return new Probe[] {held, probe};
                }
                held = probe;
            }
            return new Probe[] {held, null};
        }
    }

    /** The floor: a bare SUB per engine on one poller and one thread, counting messages and bytes, no decoding. */
    static final class FloorReceiver implements Receiver {
        final ZContext context = new ZContext(1);
        final AtomicLong batches = new AtomicLong();
        final AtomicLong bytes = new AtomicLong();
        final long eventsPerBatch;
        final Thread thread;
        volatile boolean running = true;

        FloorReceiver(List<String> endpoints, long eventsPerBatch) {
            this.eventsPerBatch = eventsPerBatch;
            List<ZMQ.Socket> subs = new ArrayList<>();
            for (String endpoint : endpoints) {
                ZMQ.Socket sub = context.createSocket(SocketType.SUB);
                sub.setRcvHWM(100_000);
                sub.subscribe(new byte[0]);
                sub.connect(endpoint);
                subs.add(sub);
            }
            thread = new Thread(() -> {
                ZMQ.Poller poller = context.createPoller(subs.size());
                subs.forEach(s -> poller.register(s, ZMQ.Poller.POLLIN));
                while (running) {
                    poller.poll(10);
                    for (ZMQ.Socket sub : subs) {
                        byte[] frame;
                        while ((frame = sub.recv(ZMQ.DONTWAIT)) != null) {
                            if (!sub.hasReceiveMore()) {
                                batches.lazySet(batches.get() + 1);
                                bytes.lazySet(bytes.get() + frame.length);
                            }
                        }
                    }
                }
            }, "bench-floor");
            thread.start();
        }

        @Override
        public long[] totals() {
            long b = batches.get();
            return new long[] {b, bytes.get(), b * eventsPerBatch, 0};
        }

        @Override
        public long cpuNanos() {
            return threadCpu("bench-floor") + ioThreadsCpu() / 2;
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            thread.join(2_000);
            context.close();
        }
    }

    /**
     * kvbroker's ingest: frames, sequence checks and decoding per engine, no replay endpoints; then nothing, the
     * index, or the journal and the index behind it (as the daemon runs it: sync every 100 ms, a temporary folder).
     */
    static final class IngestReceiver implements Receiver {
        final ZmqIngest ingest;
        final Journal journal;
        final Path journalDir;
        final java.util.concurrent.ScheduledExecutorService syncer;

        IngestReceiver(List<String> endpoints, String side) throws Exception {
            BrokerConfig config = ConfigLoader.load(Optional.empty(), Map.of(), Map.of());
            EngineRegistry registry = new EngineRegistry();
            for (int i = 0; i < endpoints.size(); i++) {
                registry.register(new EngineSpec(new EngineKey("bench-" + i, 0), "m",
                        Endpoint.parse(endpoints.get(i)), Optional.empty(), ""));
            }
            IngestSink sink = IngestSink.NONE;
            if (side.contains("index")) {
                BlockIndex index = new BlockIndex(id -> "m", 16, PrefixScorer.Weights.DEFAULT);
                sink = BatchApplier.indexOnly(index);
                if (side.contains("journal")) {
                    journalDir = Files.createTempDirectory("kvbroker-ingest-bench");
                    journal = Journal.open(journalDir, Journal.Sync.INTERVAL);
                    syncer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
                    syncer.scheduleAtFixedRate(journal::syncWal, 100, 100,
                            java.util.concurrent.TimeUnit.MILLISECONDS);
                    JournalLog log = new JournalLog(index, registry, new CheckpointScheduler.Policy(5_000, 60_000),
                            System::currentTimeMillis);
                    log.attach(journal);
                    sink = new BatchApplier(index, log, null);
                } else {
                    journalDir = null;
                    journal = null;
                    syncer = null;
                }
            } else {
                journalDir = null;
                journal = null;
                syncer = null;
            }
            ingest = new ZmqIngest(registry, sink, IngestSettings.from(config));
            ingest.start();
        }

        @Override
        public long[] totals() {
            long[] sums = new long[4];
            for (EngineStream stream : ingest.streams()) {
                sums[0] += stream.counters().get(Counter.BATCHES);
                sums[1] += stream.counters().get(Counter.BYTES);
                sums[2] += stream.counters().get(Counter.BLOCK_EVENTS);
                sums[3] += stream.counters().get(Counter.GAPS);
            }
            return sums;
        }

        @Override
        public long cpuNanos() {
            return threadCpu("kvbroker-ingest") + threadCpu("kvbroker-journal-writer") + ioThreadsCpu() / 2;
        }

        @Override
        public void close() throws InterruptedException {
            ingest.stop(Duration.ofSeconds(5));
            if (journal != null) {
                syncer.shutdownNow();
                journal.close();
                Journal.destroy(journalDir);
            }
        }
    }

    private static long threadCpu(String name) {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long total = 0;
        for (ThreadInfo info : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (info != null && info.getThreadName().equals(name)) {
                total += threads.getThreadCpuTime(info.getThreadId());
            }
        }
        return total;
    }

    /**
     * CPU of JeroMQ's I/O threads ("iothread-..."): the sender's context and the receiver's have one each, doing
     * similar work per message, so half is counted for the receiving side (an estimate, said so in the report).
     */
    private static long ioThreadsCpu() {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long total = 0;
        for (ThreadInfo info : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (info != null && info.getThreadName().startsWith("iothread")) {
                total += threads.getThreadCpuTime(info.getThreadId());
            }
        }
        return total;
    }

    static long blockEventsPerBatch(List<byte[]> payloads) throws Exception {
        KvEventDecoder decoder = new KvEventDecoder();
        long events = 0;
        for (byte[] payload : payloads) {
            events += decoder.decode(payload).blockEventCount();
        }
        return Math.round((double) events / payloads.size());
    }

    private static String section(List<Probe[]> results, String command, double seconds) {
        StringBuilder md = new StringBuilder();
        md.append(BenchReport.writtenBy(command)).append(".\n\n");
        md.append("The highest rate that held (at least 97% of the offered batches arrived and no gap was seen), found by"
                + " doubling\nthe offered rate from ").append(seconds < 2 ? "40,000" : "20,000")
                .append(" batches/s, each probe measured ").append((int) seconds).append(" s after ")
                .append((int) Math.min(1, seconds)).append(" s at that rate. Publishers on one thread\nreplay pre-encoded realistic map-form"
                        + " batches (the decoder's mix) over loopback TCP. `floor` is a bare JeroMQ SUB\nloop on one"
                        + " thread, receiving without decoding; `ingest` is kvbroker's ingest thread (frames, sequence"
                        + " checks,\ndecoding) with nothing behind it; `ingest+index` applies to the index;"
                        + " `ingest+index+journal` also writes the journal\n(RocksDB, sync every 100 ms, the"
                        + " daemon's default). Sender and receiver share the 2 cores. CPU-s"
                        + " per million block events\ncounts the receiving thread and half of the JeroMQ I/O threads'"
                        + " time (sender and receiver have one each).\n\n");
        md.append("| side | engines | held: batches/s | MB/s | block events/s | CPU-s per M block events | next probe "
                + "(fell behind) |\n");
        md.append("|---|---|---|---|---|---|---|\n");
        for (Probe[] r : results) {
            Probe p = r[0];
            String next = r[1] == null ? "none: search ended" : String.format(Locale.ROOT,
                    "%,.0f offered, %,.0f arrived, %d gaps", r[1].offeredBatchesPerSec(), r[1].batchesPerSec(),
                    r[1].gaps());
            if (p == null) {
                md.append(String.format(Locale.ROOT, "| %s | %d | below 10,000 | | | | %s |%n", r[1].side(),
                        r[1].engines(), next));
                continue;
            }
            md.append(String.format(Locale.ROOT, "| %s | %d | %,.0f | %.1f | %,.0f | %.3f | %s |%n", p.side(),
                    p.engines(), p.batchesPerSec(), p.mbPerSec(), p.blockEventsPerSec(),
                    p.cpuSecondsPerMillionEvents(), next));
        }
        return md.toString();
    }

    private static String json(List<Probe[]> results, String command) {
        List<String> entries = new ArrayList<>();
        for (Probe[] result : results) {
            Probe p = result[0];
            if (p != null) {
                entries.add(String.format(Locale.ROOT, "    {\"side\": \"%s\", \"engines\": %d, "
                        + "\"heldBatchesPerSec\": %.0f, \"MBps\": %.1f, \"blockEventsPerSec\": %.0f, "
                        + "\"cpuSecondsPerMillionEvents\": %.4f}", p.side(), p.engines(), p.batchesPerSec(),
                        p.mbPerSec(), p.blockEventsPerSec(), p.cpuSecondsPerMillionEvents()));
            }
        }
        return BenchReport.json(command, "ingest", entries);
    }
}
