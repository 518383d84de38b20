package io.kvbroker.bench;

import io.kvbroker.codec.WireFrames;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.IngestSink;
import io.kvbroker.ingest.ZmqIngest;
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
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Ingest throughput over real ZeroMQ on loopback: N publishers replay pre-encoded realistic batches as fast as one
 * thread can send them, into kvbroker's ingest (decode and sequence checks on, no index yet), next to the floor of a
 * bare SUB loop receiving the same messages. Usage: {@code IngestBench [--quick] [--out DIR]}.
 *
 * <p>Design note: publisher and broker share this machine's cores, so the figures are what the broker keeps up with
 * while a sender takes one core; CPU-seconds per million block events is the number that travels to other machines.
 */
public final class IngestBench {
    private IngestBench() {
    }

    record Result(String what, int engines, double seconds, long batches, long bytes, long blockEvents,
            double cpuSeconds, long gaps) {
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

    /** Publishers on one thread, each a bound PUB sending the payload set in a loop with growing sequences. */
    static final class Blaster implements AutoCloseable {
        final ZContext context = new ZContext(1);
        final List<ZMQ.Socket> pubs = new ArrayList<>();
        final List<byte[]> payloads;
        final Thread thread;
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
            while (running) {
                for (int i = 0; i < pubs.size(); i++) {
                    ZMQ.Socket pub = pubs.get(i);
                    byte[] payload = payloads.get(next++ % payloads.size());
                    pub.send(topic, ZMQ.SNDMORE);
                    pub.send(WireFrames.sequenceFrame(sequence[i]++), ZMQ.SNDMORE);
                    pub.send(payload, 0);
                }
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
        Path out = Path.of(".");
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--out")) {
                out = Path.of(args[i + 1]);
            }
        }
        double seconds = quick ? 3 : 10;
        List<byte[]> payloads = Payloads.realisticMix(2048, 42);
        List<Result> results = new ArrayList<>();
        for (int engines : quick ? new int[] {10} : new int[] {1, 10, 100}) {
            results.add(floor(engines, payloads, seconds));
            results.add(ingest(engines, payloads, seconds));
        }
        for (Result r : results) {
            System.out.printf(Locale.ROOT, "%-6s %3d engines: %7.1f MB/s %9.0f batches/s %11.0f block events/s"
                    + " | %.3f CPU-s per M events | gaps %d%n", r.what(), r.engines(), r.mbPerSec(),
                    r.batchesPerSec(), r.blockEventsPerSec(), r.cpuSecondsPerMillionEvents(), r.gaps());
        }
        String command = "scripts/bench ingest" + (quick ? " --quick" : "");
        BenchReport.writeSection(out, "Ingest", section(results, command, seconds));
        Files.createDirectories(out.resolve("bench/results"));
        Files.writeString(out.resolve("bench/results/ingest.json"), json(results, command));
    }

    /** The floor: a bare SUB per engine on one poller, counting bytes, no decoding. */
    static Result floor(int engines, List<byte[]> payloads, double seconds) throws Exception {
        try (Blaster blaster = new Blaster(engines, payloads); ZContext context = new ZContext(1)) {
            List<ZMQ.Socket> subs = new ArrayList<>();
            ZMQ.Poller poller = context.createPoller(engines);
            for (String endpoint : blaster.endpoints()) {
                ZMQ.Socket sub = context.createSocket(SocketType.SUB);
                sub.setRcvHWM(100_000);
                sub.subscribe(new byte[0]);
                sub.connect(endpoint);
                poller.register(sub, ZMQ.Poller.POLLIN);
                subs.add(sub);
            }
            blaster.thread.start();
            long[] counts = new long[2];
            long warmupEnd = System.nanoTime() + 2_000_000_000L;
            long end = warmupEnd + (long) (seconds * 1e9);
            ThreadMXBean threads = ManagementFactory.getThreadMXBean();
            long cpuStart = 0;
            boolean measuring = false;
            while (System.nanoTime() < end) {
                if (!measuring && System.nanoTime() >= warmupEnd) {
                    measuring = true;
                    counts[0] = 0;
                    counts[1] = 0;
                    cpuStart = threads.getCurrentThreadCpuTime() + ioThreadsCpu(threads) / 2;
                }
                poller.poll(10);
                for (ZMQ.Socket sub : subs) {
                    byte[] frame;
                    while ((frame = sub.recv(ZMQ.DONTWAIT)) != null) {
                        if (!sub.hasReceiveMore()) {
                            counts[0]++;
                            counts[1] += frame.length;
                        }
                    }
                }
            }
            double cpu = (threads.getCurrentThreadCpuTime() + ioThreadsCpu(threads) / 2 - cpuStart) / 1e9;
            long eventsPerBatch = blockEventsPerBatch(payloads);
            return new Result("floor", engines, seconds, counts[0], counts[1], counts[0] * eventsPerBatch, cpu, 0);
        }
    }

    /** kvbroker's ingest: decode, sequences, per-engine streams; no replay endpoints, so a gap is a void. */
    static Result ingest(int engines, List<byte[]> payloads, double seconds) throws Exception {
        BrokerConfig config = ConfigLoader.load(Optional.empty(), Map.of(), Map.of("log.level", "warn"));
        EngineRegistry registry = new EngineRegistry();
        ZmqIngest ingest = new ZmqIngest(registry, IngestSink.NONE, config);
        try (Blaster blaster = new Blaster(engines, payloads)) {
            List<String> endpoints = blaster.endpoints();
            for (int i = 0; i < endpoints.size(); i++) {
                registry.register(new EngineSpec(new EngineKey("bench-" + i, 0), "m",
                        Endpoint.parse(endpoints.get(i)), Optional.empty(), ""));
            }
            ingest.start();
            blaster.thread.start();
            Thread.sleep(2_000);
            ThreadMXBean threads = ManagementFactory.getThreadMXBean();
            long[] before = totals(ingest);
            long cpuBefore = ingestCpu(threads);
            long start = System.nanoTime();
            Thread.sleep((long) (seconds * 1000));
            long[] after = totals(ingest);
            double elapsed = (System.nanoTime() - start) / 1e9;
            double cpu = (ingestCpu(threads) - cpuBefore) / 1e9;
            return new Result("ingest", engines, elapsed, after[0] - before[0], after[1] - before[1],
                    after[2] - before[2], cpu, after[3] - before[3]);
        } finally {
            ingest.stop(Duration.ofSeconds(5));
        }
    }

    private static long[] totals(ZmqIngest ingest) {
        long[] sums = new long[4];
        for (EngineStream stream : ingest.streams()) {
            sums[0] += stream.counters().get(Counter.BATCHES);
            sums[1] += stream.counters().get(Counter.BYTES);
            sums[2] += stream.counters().get(Counter.BLOCK_EVENTS);
            sums[3] += stream.counters().get(Counter.GAPS);
        }
        return sums;
    }

    /** CPU of the broker side: the ingest thread and the JeroMQ I/O threads other than the publishers'. */
    private static long ingestCpu(ThreadMXBean threads) {
        long total = 0;
        for (ThreadInfo info : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (info != null && info.getThreadName().equals("kvbroker-ingest")) {
                total += threads.getThreadCpuTime(info.getThreadId());
            }
        }
        return total + ioThreadsCpu(threads) / 2;
    }

    /**
     * CPU of JeroMQ's I/O threads ("iothread-..."). Publisher and subscriber contexts have one each; callers halve
     * it where only the receiving side counts (an estimate: the two do similar work per message).
     */
    private static long ioThreadsCpu(ThreadMXBean threads) {
        long total = 0;
        for (ThreadInfo info : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (info != null && info.getThreadName().startsWith("iothread")) {
                total += threads.getThreadCpuTime(info.getThreadId());
            }
        }
        return total;
    }

    private static long blockEventsPerBatch(List<byte[]> payloads) throws Exception {
        io.kvbroker.codec.KvEventDecoder decoder = new io.kvbroker.codec.KvEventDecoder();
        long events = 0;
        for (byte[] payload : payloads) {
            events += decoder.decode(payload).blockEventCount();
        }
        return Math.round((double) events / payloads.size());
    }

    private static String section(List<Result> results, String command, double seconds) {
        StringBuilder md = new StringBuilder();
        md.append("Written by `").append(command).append("` on ").append(BenchReport.machine()).append(", ")
                .append(BenchReport.jvm()).append(", ").append(BenchReport.now()).append(".\n\n");
        md.append("Publishers on one thread send pre-encoded realistic map-form batches (the decoder's mix) as fast as"
                + " they can\nover loopback TCP; ").append((int) seconds).append(" s measured after 2 s of warm-up. "
                + "`floor` is a bare JeroMQ SUB loop receiving the same\nmessages without decoding; `ingest` is"
                + " kvbroker's ingest thread (frames, sequence checks, decoding) with no index\nor journal yet. "
                + "Sender and receiver share the 2 cores, so rates are bounded by the sender too; CPU-s per million\n"
                + "block events (receiving side: its thread plus half of the JeroMQ I/O threads' time) is the figure"
                + " that\ncarries to other machines. Gaps are batches the receive high-water mark dropped.\n\n");
        md.append("| side | engines | MB/s | batches/s | block events/s | CPU-s per M block events | gaps |\n");
        md.append("|---|---|---|---|---|---|---|\n");
        for (Result r : results) {
            md.append(String.format(Locale.ROOT, "| %s | %d | %.1f | %,.0f | %,.0f | %.3f | %d |%n", r.what(),
                    r.engines(), r.mbPerSec(), r.batchesPerSec(), r.blockEventsPerSec(),
                    r.cpuSecondsPerMillionEvents(), r.gaps()));
        }
        return md.toString();
    }

    private static String json(List<Result> results, String command) {
        StringBuilder json = new StringBuilder("{\n  \"command\": \"").append(command).append("\",\n  \"ingest\": [\n");
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            json.append(String.format(Locale.ROOT, "    {\"side\": \"%s\", \"engines\": %d, \"MBps\": %.1f, "
                    + "\"batchesPerSec\": %.0f, \"blockEventsPerSec\": %.0f, \"cpuSecondsPerMillionEvents\": %.4f,"
                    + " \"gaps\": %d}%s%n", r.what(), r.engines(), r.mbPerSec(), r.batchesPerSec(),
                    r.blockEventsPerSec(), r.cpuSecondsPerMillionEvents(), r.gaps(),
                    i + 1 < results.size() ? "," : ""));
        }
        return json.append("  ]\n}\n").toString();
    }
}
