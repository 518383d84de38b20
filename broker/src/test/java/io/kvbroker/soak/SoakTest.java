package io.kvbroker.soak;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.sim.Workload;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.ClassHistogram;
import io.kvbroker.testing.SimulatedBrokers;
import io.kvbroker.watch.StreamCopy;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A bounded soak: a real broker with a journal, fed by simulated engines at a steady rate, with Score calls and a
 * Watch stream running, sampled every few seconds after a warm-up; heap after a GC, RSS, threads and open files
 * must show no growth trend.
 *
 * <p>Design note: the engines have small caches (300 GPU, 600 CPU blocks) and replay buffers (500 batches, 5 s) so
 * they reach their working set within seconds and then only replace blocks (LRU eviction): from then on the index,
 * the engines' replay buffers, the Watch buffer and the journal's retention are all at their bounds, and anything
 * that still grows is a leak. (A first version kept vLLM's 10,000-batch replay buffer: the heap then grew by the
 * simulated engines' own buffers, 1 MB/s, for 100 s.) The suite runs it for 45 s;
 * {@code -Dkvbroker.soak.seconds=600} runs it longer by hand (sampling every 5 s either way). The bounds are loose
 * on purpose (a loaded 2-core machine moves RSS and thread counts by some margin); a leak of one thread, socket or
 * buffer per batch or per call would pass them within seconds. {@code -Dkvbroker.soak.histogramDir=FOLDER} also
 * writes class histograms at the first and the last sample there and prints the classes that grew most in between.
 */
@Tag("slow")
class SoakTest {
    private static final int ENGINES = 8;
    private static final int STEPS_PER_SECOND = 100;
    private static final long MB = 1024 * 1024;
    @TempDir
    Path work;

    /** One sample of the process's resources, and the work done by then. */
    private record Sample(long elapsedS, long heapAfterGc, long rss, int threads, long fds, long residencies,
            long batches, long scores, long watchBatches) {
        @Override
        public String toString() {
            return String.format("%5d s | heap %6.1f MB | rss %6.1f MB | threads %3d | fds %4d | residencies %6d |"
                    + " batches %8d | scores %6d | watched %8d", elapsedS, heapAfterGc / (double) MB,
                    rss / (double) MB, threads, fds, residencies, batches, scores, watchBatches);
        }
    }

    @Test
    void heapRssThreadsAndFilesStayFlatUnderSteadyLoad() throws Exception {
        long totalSeconds = Long.getLong("kvbroker.soak.seconds", 45);
        long warmUpSeconds = 10;
        long sampleEverySeconds = 5;
        List<SimulatedEngine.Options> fleet = new ArrayList<>();
        for (int i = 0; i < ENGINES; i++) {
            String model = i % 2 == 0 ? "sim/llama-8b" : "sim/qwen-7b";
            fleet.add(new SimulatedEngine.Options("soak-" + i, 0, model, "kv@soak-" + i + "@" + model,
                    i % 3 == 0 ? KvEventEncoder.Form.ARRAY : KvEventEncoder.Form.MAP, 500, 1_000,
                    new Workload.Shape(300, 600, 8, 2, i % 5 == 4, 8, 0.0005, 0.02), 500 + i));
        }
        List<AutoCloseable> open = new ArrayList<>();
        AtomicBoolean stop = new AtomicBoolean();
        ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
        AtomicLong scores = new AtomicLong();
        AtomicLong watched = new AtomicLong();
        try (Simulator simulator = new Simulator(fleet, 0, STEPS_PER_SECOND).start()) {
            BrokerDaemon daemon = SimulatedBrokers.start(simulator, work, "soak", Map.of(
                    "journal.dir", work.resolve("journal").toString(), "journal.retention.maxBatches", "20000",
                    "journal.checkpoint.everyBatches", "2000", "watch.bufferBatches", "4096"));
            open.add(daemon::stop);
            ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", daemon.grpcPort()).usePlaintext()
                    .build();
            open.add(() -> {
                channel.shutdownNow();
                channel.awaitTermination(5, TimeUnit.SECONDS);
            });
            var stub = KvIndexServiceGrpc.newBlockingStub(channel);
            Thread scorer = new Thread(() -> score(stub, stop, scores, failures), "soak-scorer");
            Context.CancellableContext watchCall = Context.current().withCancellation();
            Thread watcher = new Thread(() -> watchCall.run(() -> watch(stub, watched, stop, failures)), "soak-watcher");
            scorer.start();
            watcher.start();
            open.add(() -> {
                stop.set(true);
                watchCall.cancel(null);
                scorer.join(10_000);
                watcher.join(10_000);
            });

            long startNanos = System.nanoTime();
            Await.until("every engine applied batches", Duration.ofSeconds(60), () -> {
                for (int e = 0; e < ENGINES; e++) {
                    var stream = daemon.ingest().stream(e);
                    if (stream == null || stream.cursor() < 0) {
                        return false;
                    }
                }
                return true;
            });
            List<Sample> samples = new ArrayList<>();
            String histogramDir = System.getProperty("kvbroker.soak.histogramDir", "");
            Path firstHistogram = null;
            long nextSampleS = warmUpSeconds;
            while (nextSampleS <= totalSeconds) {
                long waitNanos = startNanos + TimeUnit.SECONDS.toNanos(nextSampleS) - System.nanoTime();
                if (waitNanos > 0) {
                    // The soak samples on a fixed schedule of wall-clock seconds: pacing, not a wait for state.
                    TimeUnit.NANOSECONDS.sleep(waitNanos);
                }
                assertThat(failures).as("load threads").isEmpty();
                Sample sample = sample(nextSampleS, daemon, scores.get(), watched.get());
                samples.add(sample);
                System.out.println("soak " + sample);
                if (!histogramDir.isEmpty() && firstHistogram == null) {
                    // Written away at once: nothing of it is on the heap when the last one is taken.
                    firstHistogram = Files.createDirectories(Path.of(histogramDir)).resolve("soak-histogram-first.txt");
                    Files.writeString(firstHistogram, ClassHistogram.take());
                }
                nextSampleS += sampleEverySeconds;
            }
            if (firstHistogram != null) {
                compareHistograms(firstHistogram);
            }
            stop.set(true);
            watchCall.cancel(null);
            scorer.join(10_000);
            watcher.join(10_000);
            assertThat(failures).as("load threads").isEmpty();

            Sample first = samples.get(0);
            Sample last = samples.get(samples.size() - 1);
            long batches = last.batches() - first.batches();
            System.out.printf("soak held %.0f batches/s from %d engines, %.1f Score calls/s and one Watch stream"
                    + " for %d s after a %d s warm-up%n", batches / (double) (last.elapsedS() - first.elapsedS()),
                    ENGINES, (last.scores() - first.scores()) / (double) (last.elapsedS() - first.elapsedS()),
                    last.elapsedS() - first.elapsedS(), warmUpSeconds);
            assertThat(batches).as("batches applied while sampling").isPositive();
            assertThat(last.scores()).as("Score calls answered").isGreaterThan(first.scores());
            assertThat(last.watchBatches()).as("batches watched").isGreaterThan(first.watchBatches());
            for (int e = 0; e < ENGINES; e++) {
                assertThat(daemon.ingest().stream(e).counters().get(Counter.VOIDS)).as("engine %d voids", e).isZero();
            }

            long minHeap = samples.stream().mapToLong(Sample::heapAfterGc).min().orElseThrow();
            assertThat(last.heapAfterGc()).as("heap after GC at the end, against the lowest sample %d", minHeap)
                    .isLessThanOrEqualTo(Math.max(minHeap * 5 / 4, minHeap + 32 * MB));
            assertThat(last.threads()).as("live threads at the end").isLessThanOrEqualTo(first.threads() + 8);
            if (first.fds() >= 0) {
                assertThat(last.fds()).as("open file descriptors at the end").isLessThanOrEqualTo(first.fds() + 32);
            }
            if (first.rss() >= 0) {
                // The JVM may still commit heap and RocksDB fill its memtables: generous, but a leak per batch is not.
                assertThat(last.rss()).as("RSS at the end").isLessThanOrEqualTo(Math.max(first.rss() * 3 / 2,
                        first.rss() + 256 * MB));
            }
        } finally {
            for (int i = open.size() - 1; i >= 0; i--) {
                open.get(i).close();
            }
        }
    }

    /** Takes the last histogram, writes it beside the first and prints the classes that grew most in between. */
    private static void compareHistograms(Path first) throws IOException {
        String last = ClassHistogram.take();
        Files.writeString(first.resolveSibling("soak-histogram-last.txt"), last);
        System.out.println("soak histogram: classes grown most from the first sample to the last (instances, bytes)");
        for (ClassHistogram.Row row : ClassHistogram.grown(Files.readString(first), last, 25)) {
            System.out.printf("soak histogram %+10d %+12d %s%n", row.instances(), row.bytes(), row.className());
        }
    }

    /** Scores a shared system prompt with a random tail, about 50 times a second, until told to stop. */
    private static void score(KvIndexServiceGrpc.KvIndexServiceBlockingStub stub, AtomicBoolean stop,
            AtomicLong scores, ConcurrentLinkedQueue<Throwable> failures) {
        SplittableRandom random = new SplittableRandom(7);
        try {
            while (!stop.get()) {
                String model = random.nextBoolean() ? "sim/llama-8b" : "sim/qwen-7b";
                ScoreRequest.Builder request = ScoreRequest.newBuilder().setModel(model);
                for (int token : Workload.sharedSystemPrompt(model)) {
                    request.addTokenIds(token);
                }
                for (int t = random.nextInt(64); t > 0; t--) {
                    request.addTokenIds(random.nextInt(32_000));
                }
                stub.withDeadlineAfter(30, TimeUnit.SECONDS).score(request.build());
                scores.incrementAndGet();
                // The load's rate: about 50 Score calls a second from this client.
                Thread.sleep(20);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable e) {
            if (!stop.get()) {
                failures.add(e);
            }
        }
    }

    /** Applies one Watch stream to the copy (which fails on a missed batch); resumes from its token if cut. */
    private static void watch(KvIndexServiceGrpc.KvIndexServiceBlockingStub stub, AtomicLong watched,
            AtomicBoolean stop, ConcurrentLinkedQueue<Throwable> failures) {
        StreamCopy copy = new StreamCopy();
        while (!stop.get()) {
            try {
                WatchRequest.Builder request = WatchRequest.newBuilder();
                if (!copy.holdings.isEmpty()) {
                    request.setResumeToken(copy.token().toByteString());
                }
                Iterator<WatchResponse> stream = stub.watch(request.build());
                while (stream.hasNext()) {
                    copy.apply(stream.next());
                    watched.set(copy.batches);
                }
            } catch (StatusRuntimeException e) {
                // A watcher that fell behind on a loaded machine is told to resume: that is the contract, not a fault.
                if (stop.get() || e.getStatus().getCode() == Status.Code.CANCELLED) {
                    return;
                }
                if (e.getStatus().getCode() != Status.Code.ABORTED) {
                    failures.add(e);
                    return;
                }
            } catch (Throwable e) {
                failures.add(e);
                return;
            }
        }
    }

    private static Sample sample(long elapsedS, BrokerDaemon daemon, long scores, long watched) {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        long batches = 0;
        for (int e = 0; e < ENGINES; e++) {
            batches += daemon.ingest().stream(e).counters().get(Counter.BATCHES);
        }
        return new Sample(elapsedS, heap, rss(), ManagementFactory.getThreadMXBean().getThreadCount(), fds(),
                daemon.index().stats().residencies(), batches, scores, watched);
    }

    /** Resident set size from /proc, or -1 where there is none. */
    private static long rss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** Open file descriptors, from /proc or the platform's bean, or -1 where neither tells. */
    private static long fds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        } catch (IOException | RuntimeException e) {
            if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean
                    unix) {
                return unix.getOpenFileDescriptorCount();
            }
            return -1;
        }
    }
}
