package io.kvbroker.bench;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import io.kvbroker.apply.BatchApplier;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.grpc.GrpcServer;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.IngestSettings;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.query.ScoreQuery;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Score round trips over gRPC at fixed offered rates, open loop, next to an empty unary call (the health check) on
 * the same server as the floor, while ingest applies about 100,000 block events/s from engines over real ZeroMQ to
 * the same index that holds 1,000 engines' chains. Usage: {@code GrpcBench [--quick] [--out DIR]}.
 *
 * <p>Design note: open loop with coordinated-omission correction: each call has an intended start time on a fixed
 * schedule, and its latency is measured from that time, not from when the sender got round to it, so a stall of
 * the sender or the server counts against every call it delayed. Client, server, ingest and publishers share this
 * machine's 2 cores; the figures are therefore an upper bound of what a broker on its own machine would show.
 */
public final class GrpcBench {
    private static final double INGEST_BLOCK_EVENTS_PER_SEC = 100_000;
    private static final int LIVE_ENGINES = 10;
    private static final int INDEXED_ENGINES = 1_000;
    private static final String FLOOR = "empty unary (health Check)";

    private GrpcBench() {
    }

    /** One measured rate of one call. */
    record Result(String call, int offeredPerSec, long calls, long errors, double seconds, Histogram micros,
            double ingestEventsPerSec) {
    }

    public static void main(String[] args) throws Exception {
        boolean quick = List.of(args).contains("--quick");
        Path out = BenchReport.outDir(args);
        double warmupSeconds = quick ? 1 : 3;
        double measureSeconds = quick ? 2 : 8;
        int[] rates = quick ? new int[] {1_000, 10_000} : new int[] {1_000, 2_000, 5_000, 10_000};

        String loadBefore = BenchReport.loadAverage();
        EngineRegistry registry = new EngineRegistry();
        BlockIndex index = new BlockIndex(id -> "m", 16, PrefixScorer.Weights.DEFAULT);
        List<byte[]> payloads = Payloads.realisticMix(2048, 42);
        long eventsPerBatch = IngestBench.blockEventsPerBatch(payloads);
        List<Result> results = new ArrayList<>();
        String breakdown;
        try (IngestBench.Blaster blaster = new IngestBench.Blaster(LIVE_ENGINES, payloads)) {
            // The live engines first, so that ingest subscribes to them (and only them) when it starts.
            for (int i = 0; i < LIVE_ENGINES; i++) {
                registry.register(new EngineSpec(new EngineKey("live-" + i, 0), "m",
                        Endpoint.parse(blaster.endpoints().get(i)), Optional.empty(), ""));
            }
            ZmqIngest ingest = new ZmqIngest(registry, BatchApplier.indexOnly(index),
                    IngestSettings.from(BrokerConfig.defaults()));
            ingest.start();
            for (int i = 0; i < INDEXED_ENGINES; i++) {
                registry.register(new EngineSpec(new EngineKey("indexed-" + i, 0), "m",
                        Endpoint.parse("tcp://127.0.0.1:" + (1_024 + i)), Optional.empty(), ""));
            }
            int[] query = IndexBench.scoreFleet(index, LIVE_ENGINES, INDEXED_ENGINES, quick ? 10 : 40);
            System.out.printf(Locale.ROOT, "index: %,d residencies over %d engines%n", index.stats().residencies(),
                    INDEXED_ENGINES);
            Readiness readiness = new Readiness();
            readiness.set(true);
            IndexQueries queries = new IndexQueries(index, registry, ingest::stream,
                    new PendingHints(System::currentTimeMillis, 1), System::currentTimeMillis);
            GrpcServer server = new GrpcServer("127.0.0.1", 0, 4 << 20, queries,
                    QueryLimits.from(BrokerConfig.defaults()), readiness);
            server.start();
            blaster.thread.start();
            blaster.batchesPerSec = INGEST_BLOCK_EVENTS_PER_SEC / eventsPerBatch;
            ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext()
                    .directExecutor().build();
            try {
                ScoreRequest score = ScoreRequest.newBuilder().setModel("m")
                        .addAllTokenIds(Arrays.stream(query).boxed().toList()).setTopK(32).build();
                ScoreResponse sample = ClientCalls.blockingUnaryCall(channel, KvIndexServiceGrpc.getScoreMethod(),
                        CallOptions.DEFAULT, score);
                System.out.printf(Locale.ROOT, "Score answers %d engines (top_k 32)%n", sample.getEngineIdsCount());
                warmUp(channel, score, quick ? 20_000 : 100_000);
                // The same prompt as the gateway's own content keys: 128 fixed64s instead of 2,049 varints to parse.
                long[] keys = Arrays.copyOf(new ContentKeys(16).promptKeys("m", null, query), 128);
                ScoreRequest scoreByKeys = ScoreRequest.newBuilder().setModel("m")
                        .addAllContentKeys(Arrays.stream(keys).boxed().toList()).setTopK(32).build();
                breakdown = breakdown(channel, queries, score, scoreByKeys, query);
                for (int rate : rates) {
                    results.add(run(channel, HealthGrpc.getCheckMethod(), HealthCheckRequest.getDefaultInstance(),
                            FLOOR, rate, warmupSeconds, measureSeconds, ingest));
                    results.add(run(channel, KvIndexServiceGrpc.getScoreMethod(), score, "Score, token ids", rate,
                            warmupSeconds, measureSeconds, ingest));
                    results.add(run(channel, KvIndexServiceGrpc.getScoreMethod(), scoreByKeys, "Score, content keys",
                            rate, warmupSeconds, measureSeconds, ingest));
                }
            } finally {
                channel.shutdownNow();
                server.stop(Duration.ofSeconds(2));
                ingest.stop(Duration.ofSeconds(2));
            }
        }
        String command = "scripts/bench grpc" + (quick ? " --quick" : "");
        String section = section(results, command, measureSeconds, warmupSeconds, index, loadBefore,
                BenchReport.loadAverage()) + breakdown;
        System.out.print(section);
        BenchReport.writeSection(out, "Score over gRPC", section);
        Files.createDirectories(out.resolve("bench/results"));
        Files.writeString(out.resolve("bench/results/grpc.json"), json(results, command));
    }

    /**
     * Closed-loop calls of both kinds, a few in flight, until the JIT has compiled the client's and the server's
     * paths: on 2 shared cores an open-loop run that starts cold builds a backlog it never works off.
     */
    private static void warmUp(ManagedChannel channel, ScoreRequest score, int calls) throws InterruptedException {
        java.util.concurrent.Semaphore inFlight = new java.util.concurrent.Semaphore(4);
        long start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            inFlight.acquire();
            StreamObserver<Object> release = new StreamObserver<>() {
                @Override
                public void onNext(Object value) {
                }

                @Override
                public void onError(Throwable t) {
                    inFlight.release();
                }

                @Override
                public void onCompleted() {
                    inFlight.release();
                }
            };
            if (i % 2 == 0) {
                ClientCalls.asyncUnaryCall(channel.newCall(KvIndexServiceGrpc.getScoreMethod(), CallOptions.DEFAULT),
                        score, erase(release));
            } else {
                ClientCalls.asyncUnaryCall(channel.newCall(HealthGrpc.getCheckMethod(), CallOptions.DEFAULT),
                        HealthCheckRequest.getDefaultInstance(), erase(release));
            }
        }
        inFlight.acquire(4);
        System.out.printf(Locale.ROOT, "warm-up: %,d closed-loop calls in %.1f s%n", calls,
                (System.nanoTime() - start) / 1e9);
    }

    @SuppressWarnings("unchecked")
    private static <T> StreamObserver<T> erase(StreamObserver<Object> observer) {
        return (StreamObserver<T>) (StreamObserver<?>) observer;
    }

    /**
     * Where a Score's time goes: one call in flight at a time (no queueing), against the parts measured in process
     * on this thread: the broker's query alone and the parsing of the request.
     */
    private static String breakdown(ManagedChannel channel, IndexQueries queries, ScoreRequest score,
            ScoreRequest scoreByKeys, int[] query) throws Exception {
        int calls = 3_000;
        double[] micros = new double[5];
        long start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            ClientCalls.blockingUnaryCall(channel, HealthGrpc.getCheckMethod(), CallOptions.DEFAULT,
                    HealthCheckRequest.getDefaultInstance());
        }
        micros[0] = (System.nanoTime() - start) / 1e3 / calls;
        start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            ClientCalls.blockingUnaryCall(channel, KvIndexServiceGrpc.getScoreMethod(), CallOptions.DEFAULT, score);
        }
        micros[1] = (System.nanoTime() - start) / 1e3 / calls;
        start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            ClientCalls.blockingUnaryCall(channel, KvIndexServiceGrpc.getScoreMethod(), CallOptions.DEFAULT,
                    scoreByKeys);
        }
        micros[2] = (System.nanoTime() - start) / 1e3 / calls;
        ScoreQuery inProcess = new ScoreQuery("m", null, query, null, null, 32, 0);
        start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            queries.score(inProcess);
        }
        micros[3] = (System.nanoTime() - start) / 1e3 / calls;
        com.google.protobuf.ByteString bytes = score.toByteString();
        start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            ScoreRequest.parseFrom(bytes);
        }
        micros[4] = (System.nanoTime() - start) / 1e3 / calls;
        return String.format(Locale.ROOT, "%nWhere the time goes: mean µs per call with one call in flight (no"
                + " queueing), same server, ingest running,%nafter the runs above; and the broker's parts timed in"
                + " process.%n%n| empty unary | Score, token ids | Score, content keys | broker query in process"
                + " (IndexQueries.score) | parsing the token-id request |%n|---|---|---|---|---|%n"
                + "| %.0f | %.0f | %.0f | %.1f | %.1f |%n", micros[0], micros[1], micros[2], micros[3], micros[4]);
    }

    /** Offers {@code rate} calls/s for the warm-up, then measures for {@code measureSeconds}. */
    private static <Q, R> Result run(ManagedChannel channel, MethodDescriptor<Q, R> method, Q request, String name,
            int rate, double warmupSeconds, double measureSeconds, ZmqIngest ingest) throws InterruptedException {
        Recorder recorder = new Recorder(3_600_000_000L, 3);
        AtomicLong errors = new AtomicLong();
        AtomicLong completed = new AtomicLong();
        AtomicLong inFlight = new AtomicLong();
        long intervalNanos = 1_000_000_000L / rate;
        long start = System.nanoTime();
        long measureFrom = start + (long) (warmupSeconds * 1e9);
        long end = measureFrom + (long) (measureSeconds * 1e9);
        long eventsBefore = -1;
        long eventsNanos = 0;
        long sent = 0;
        while (true) {
            long intended = start + sent * intervalNanos;
            if (intended >= end) {
                break;
            }
            if (eventsBefore < 0 && intended >= measureFrom) {
                eventsBefore = ingestedEvents(ingest);
                eventsNanos = System.nanoTime();
                recorder.reset();
                errors.set(0);
                completed.set(0);
            }
            long wait = intended - System.nanoTime();
            if (wait > 20_000) {
                LockSupport.parkNanos(wait - 10_000);
                continue;
            }
            while (System.nanoTime() < intended) {
                Thread.onSpinWait();
            }
            boolean measured = intended >= measureFrom;
            inFlight.incrementAndGet();
            ClientCalls.asyncUnaryCall(channel.newCall(method, CallOptions.DEFAULT.withDeadlineAfter(5,
                    TimeUnit.SECONDS)), request, new StreamObserver<R>() {
                        @Override
                        public void onNext(R value) {
                        }

                        @Override
                        public void onError(Throwable t) {
                            if (measured) {
                                errors.incrementAndGet();
                            }
                            inFlight.decrementAndGet();
                        }

                        @Override
                        public void onCompleted() {
                            if (measured) {
                                // From the intended start: a call the sender sent late still counts its wait.
                                recorder.recordValue(Math.max(1, (System.nanoTime() - intended) / 1_000));
                                completed.incrementAndGet();
                            }
                            inFlight.decrementAndGet();
                        }
                    });
            sent++;
        }
        double ingestRate = (ingestedEvents(ingest) - eventsBefore) / ((System.nanoTime() - eventsNanos) / 1e9);
        // Every call ends (answered, or failed by its 5 s deadline) before the next run starts, so that a run that
        // fell behind cannot leave its backlog to the next one; late calls count from their intended start.
        long drainUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (inFlight.get() > 0 && System.nanoTime() < drainUntil) {
            Thread.sleep(10);
        }
        Histogram histogram = recorder.getIntervalHistogram();
        Result result = new Result(name, rate, histogram.getTotalCount(), errors.get(), measureSeconds, histogram,
                ingestRate);
        System.out.printf(Locale.ROOT, "%-28s %6d/s: p50 %6d µs, p99 %6d µs, p99.9 %6d µs, max %7d µs, %d calls,"
                + " %d errors, ingest %,.0f block events/s%n", name, rate, histogram.getValueAtPercentile(50),
                histogram.getValueAtPercentile(99), histogram.getValueAtPercentile(99.9), histogram.getMaxValue(),
                histogram.getTotalCount(), errors.get(), ingestRate);
        return result;
    }

    private static long ingestedEvents(ZmqIngest ingest) {
        long events = 0;
        for (EngineStream stream : ingest.streams()) {
            events += stream.counters().get(Counter.BLOCK_EVENTS);
        }
        return events;
    }

    private static String section(List<Result> results, String command, double measureSeconds,
            double warmupSeconds, BlockIndex index, String loadBefore, String loadAfter) {
        StringBuilder md = new StringBuilder();
        md.append(BenchReport.writtenBy(command)).append(".\n\n");
        md.append(String.format(Locale.ROOT, "Score of a 2,049-token prompt (128 chunks; sent as token ids, the broker"
                + " computing the keys, or as\nthe 128 content keys) with top_k 32, over an index of %d engines"
                + " holding %,d residencies, through\na real gRPC server and client on loopback (plaintext HTTP/2, one"
                + " channel). Open loop at each offered rate: %.0f s warm-up, %.0f s measured; latency in µs from each call's\nintended start"
                + " (corrected for coordinated omission, HdrHistogram). Floor: an empty unary call on the same"
                + " server\n(the standard health Check). Meanwhile %d engines publish over ZeroMQ into the same"
                + " index at about\n100,000 block events/s (column `ingest`, measured). Client, server, ingest and"
                + " publishers share the 2 cores;\nthe machine's load average was " + loadBefore + " before the run and "
                + loadAfter + " after it.\n\n", INDEXED_ENGINES + LIVE_ENGINES, index.stats().residencies(),
                warmupSeconds, measureSeconds, LIVE_ENGINES));
        md.append("| offered calls/s | call | p50 | p99 | p99.9 | max | answered | errors | ingest block events/s |"
                + " p99 / floor p99 | target |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        Result floor = null;
        for (Result r : results) {
            boolean isFloor = r.call().equals(FLOOR);
            floor = isFloor ? r : floor;
            md.append(String.format(Locale.ROOT, "| %,d | %s | %d | %d | %d | %d | %,d | %d | %,.0f | %s | %s |%n",
                    r.offeredPerSec(), r.call(), r.micros().getValueAtPercentile(50),
                    r.micros().getValueAtPercentile(99), r.micros().getValueAtPercentile(99.9),
                    r.micros().getMaxValue(), r.calls(), r.errors(), r.ingestEventsPerSec(),
                    isFloor || floor == null ? "" : String.format(Locale.ROOT, "%.2f",
                            r.micros().getValueAtPercentile(99)
                                    / (double) Math.max(1, floor.micros().getValueAtPercentile(99))),
                    !isFloor && r.offeredPerSec() == 10_000 ? "p99 <= 1,000" : ""));
        }
        return md.toString();
    }

    private static String json(List<Result> results, String command) {
        List<String> entries = new ArrayList<>();
        for (Result r : results) {
            entries.add(String.format(Locale.ROOT, "    {\"call\": \"%s\", \"offeredPerSec\": %d, \"p50us\": %d,"
                    + " \"p99us\": %d, \"p999us\": %d, \"maxUs\": %d, \"answered\": %d, \"errors\": %d,"
                    + " \"ingestBlockEventsPerSec\": %.0f}", r.call(), r.offeredPerSec(),
                    r.micros().getValueAtPercentile(50), r.micros().getValueAtPercentile(99),
                    r.micros().getValueAtPercentile(99.9), r.micros().getMaxValue(), r.calls(), r.errors(),
                    r.ingestEventsPerSec()));
        }
        return BenchReport.json(command, "grpc", entries);
    }
}
