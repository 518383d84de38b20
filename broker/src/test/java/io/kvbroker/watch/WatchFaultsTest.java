package io.kvbroker.watch;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.daemon.BrokerDaemon;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.index.Events;
import io.kvbroker.proto.v1.EnginePosition;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.Ports;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Watch under faults a gateway can cause: clients that disconnect in the middle of a snapshot, and adversarial
 * requests (huge resume tokens, very long names, huge filter lists). One engine holds 40,000 blocks, so its snapshot
 * takes three parts of {@code WatchService.Limits}' 16,384 holdings; a second watcher reads throughout and must see
 * every batch, and the server's count of open watchers must come back down.
 */
class WatchFaultsTest {
    private static final int BLOCKS = 40_000;
    private static final int BLOCKS_PER_BATCH = 5_000;
    private final List<AutoCloseable> open = new ArrayList<>();
    private ZContext zmq;
    private ZMQ.Socket pub;
    private long nextSequence;
    private BrokerDaemon daemon;
    private KvIndexServiceGrpc.KvIndexServiceBlockingStub stub;

    @BeforeEach
    void start() throws Exception {
        int port = Ports.freeRange(1);
        zmq = new ZContext();
        pub = zmq.createSocket(SocketType.PUB);
        pub.setSndHWM(0);
        pub.bind("tcp://127.0.0.1:" + port);
        // No replay endpoint: the engine's batches are applied as they come (what came before is unknown history).
        daemon = new BrokerDaemon(ConfigLoader.load(Optional.empty(), Map.of(), Map.of(
                "engines.static", "[{pod: big, model: m, endpoint: 'tcp://127.0.0.1:" + port + "'}]",
                "grpc.port", "0", "grpc.host", "127.0.0.1", "metrics.port", "0", "journal.dir", "",
                "log.statusIntervalMs", "3600000")));
        daemon.start();
        open.add(daemon::stop);
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", daemon.grpcPort()).usePlaintext()
                .maxInboundMessageSize(64 << 20).build();
        open.add(() -> {
            channel.shutdownNow();
            channel.awaitTermination(5, TimeUnit.SECONDS);
        });
        stub = KvIndexServiceGrpc.newBlockingStub(channel);
        // A PUB drops what it sends before the subscriber joined: send a first batch until it is applied.
        Await.until("the engine's first batch applied", Duration.ofSeconds(90), () -> {
            // The ingest thread creates the engine's stream shortly after start: null until then.
            var stream = daemon.ingest().stream(0);
            if (stream == null || stream.cursor() < 0) {
                publish(1, 0);
                return false;
            }
            return true;
        });
        for (int b = 0; b < BLOCKS / BLOCKS_PER_BATCH; b++) {
            publish(BLOCKS_PER_BATCH, 1_000_000L + (long) b * BLOCKS_PER_BATCH);
        }
        long last = nextSequence - 1;
        Await.until("the engine's 40,000 blocks applied", Duration.ofSeconds(60),
                () -> daemon.index().holdings(0, false).sequence() == last);
    }

    @AfterEach
    void stop() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        zmq.close();
    }

    /** Publishes one batch of {@code blocks} stored GPU blocks (a chain from {@code firstHash}) at the next sequence. */
    private void publish(int blocks, long firstHash) {
        long[] hashes = new long[blocks];
        for (int i = 0; i < blocks; i++) {
            hashes[i] = firstHash + i;
        }
        int[] tokens = Events.tokens((int) (firstHash % 100_000), blocks * 16);
        byte[] payload = new KvEventEncoder().encode(new KvEventBatch(1.0 + nextSequence, 0,
                List.of(Events.gpu(hashes, null, tokens)), 0, 0), KvEventEncoder.Form.MAP);
        pub.sendMore(new byte[0]);
        pub.sendMore(WireFrames.sequenceFrame(nextSequence++));
        pub.send(payload);
    }

    /** A watcher reading in its own thread into a copy, until cancelled. */
    private final class Reader implements AutoCloseable {
        final StreamCopy copy = new StreamCopy();
        final AtomicLong messages = new AtomicLong();
        final ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
        private final Context.CancellableContext call = Context.current().withCancellation();
        private final Thread thread;

        Reader() {
            thread = new Thread(() -> call.run(() -> {
                try {
                    Iterator<WatchResponse> stream = stub.watch(WatchRequest.getDefaultInstance());
                    while (stream.hasNext()) {
                        copy.apply(stream.next());
                        messages.incrementAndGet();
                    }
                } catch (StatusRuntimeException e) {
                    if (e.getStatus().getCode() != Status.Code.CANCELLED) {
                        failures.add(e);
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            }), "watch-reader");
            thread.start();
        }

        @Override
        public void close() throws InterruptedException {
            call.cancel(null);
            thread.join(10_000);
        }
    }

    /** A watcher that reads throughout, once it has the whole snapshot. */
    private Reader steadyWatcher() throws InterruptedException {
        Reader steady = new Reader();
        open.add(steady);
        Await.until("the steady watcher's whole snapshot", Duration.ofSeconds(60),
                () -> steady.copy.holdings.getOrDefault("big/0", Map.of()).size() >= BLOCKS);
        return steady;
    }

    /** Waits until the steady watcher has the engine's batch at {@code sequence}, or failed. */
    private static void awaitSequence(Reader steady, long sequence) throws InterruptedException {
        Await.until("the steady watcher saw batch " + sequence, Duration.ofSeconds(60), () -> {
            var position = steady.copy.positions.get("big/0");
            return position != null && position.getSequence() == sequence || !steady.failures.isEmpty();
        });
        assertThat(steady.failures).isEmpty();
    }

    @Test
    void watchersThatLeaveMidSnapshotAreEndedAndAnotherWatcherMissesNothing() throws Exception {
        Reader steady = steadyWatcher();
        assertThat(daemon.watch().openWatchers()).isOne();
        int rounds = 10;
        for (int round = 0; round < rounds; round++) {
            Context.CancellableContext call = Context.current().withCancellation();
            WatchResponse[] firstPart = new WatchResponse[1];
            try {
                call.run(() -> {
                    Iterator<WatchResponse> stream = stub.withDeadlineAfter(60, TimeUnit.SECONDS)
                            .watch(WatchRequest.getDefaultInstance());
                    while (firstPart[0] == null) {
                        WatchResponse message = stream.next();
                        if (message.hasSnapshot()) {
                            firstPart[0] = message;
                        }
                    }
                });
            } finally {
                call.cancel(null);
            }
            assertThat(firstPart[0].getSnapshot().getPart()).isZero();
            assertThat(firstPart[0].getSnapshot().getLastPart()).as("the snapshot has more parts").isFalse();
            // The engine goes on publishing while watchers come and go.
            publish(3, 2_000_000L + round * 10L);
        }
        long last = nextSequence - 1;
        Await.until("the server ended the watchers that left", Duration.ofSeconds(60),
                () -> daemon.watch().openWatchers() == 1);
        awaitSequence(steady, last);
        assertThat(steady.copy.holdings.get("big/0")).as("the steady watcher holds what the broker holds")
                .hasSize(daemon.index().holdings(0, true).keys().length).hasSizeGreaterThan(BLOCKS);
        assertThat(daemon.watch().counters().opened()).isEqualTo(1 + rounds);
        steady.close();
        Await.until("no watcher open", Duration.ofSeconds(60), () -> daemon.watch().openWatchers() == 0);
    }

    /**
     * What an adversarial Watch request gets, in words: served (the first message), or its status. A request the
     * transport refuses as too large ends with RESOURCE_EXHAUSTED.
     */
    private String outcome(WatchRequest request) {
        Context.CancellableContext call = Context.current().withCancellation();
        try {
            return call.call(() -> {
                try {
                    Iterator<WatchResponse> stream = stub.withDeadlineAfter(60, TimeUnit.SECONDS).watch(request);
                    return "served: " + stream.next().getEventCase();
                } catch (StatusRuntimeException e) {
                    return e.getStatus().getCode() + ": " + e.getStatus().getDescription();
                }
            });
        } catch (Exception e) {
            throw new AssertionError(e);
        } finally {
            call.cancel(null);
        }
    }

    @Test
    void adversarialRequestsGetAClearAnswerAndDoNotDisturbAnotherWatcher() throws Exception {
        Reader steady = steadyWatcher();
        String brokerId = steady.copy.starts.get(0).getBrokerId();
        String longName = "p".repeat(1 << 20) + "/0";

        ResumeToken.Builder many = ResumeToken.newBuilder().setBrokerId(brokerId);
        for (int i = 0; i < 100_000; i++) {
            many.addEngines(EnginePosition.newBuilder().setEngine("pod-" + i + "/0").setIncarnation(1)
                    .setSequence(i));
        }
        ResumeToken.Builder duplicates = ResumeToken.newBuilder().setBrokerId(brokerId);
        for (int i = 0; i < 100_000; i++) {
            duplicates.addEngines(EnginePosition.newBuilder().setEngine("big/0").setIncarnation(1).setSequence(i));
        }
        WatchRequest.Builder manyModels = WatchRequest.newBuilder();
        WatchRequest.Builder manyEngines = WatchRequest.newBuilder();
        for (int i = 0; i < 100_000; i++) {
            manyModels.addModels("model-" + i);
            manyEngines.addEngines("pod-" + i + "/0");
        }
        Map<String, WatchRequest> requests = new java.util.LinkedHashMap<>();
        requests.put("a resume token of 100,000 positions of unknown engines", WatchRequest.newBuilder()
                .setResumeToken(many.build().toByteString()).build());
        requests.put("a resume token of 100,000 positions of one engine", WatchRequest.newBuilder()
                .setResumeToken(duplicates.build().toByteString()).build());
        requests.put("a resume token naming an engine of 1 MiB", WatchRequest.newBuilder().setResumeToken(
                ResumeToken.newBuilder().setBrokerId(brokerId).addEngines(EnginePosition.newBuilder()
                        .setEngine(longName)).build().toByteString()).build());
        requests.put("a resume token with a broker id of 1 MiB", WatchRequest.newBuilder().setResumeToken(
                ResumeToken.newBuilder().setBrokerId(longName).build().toByteString()).build());
        requests.put("a resume token from the far future", WatchRequest.newBuilder().setResumeToken(
                ResumeToken.newBuilder().setBrokerId(brokerId).addEngines(EnginePosition.newBuilder()
                        .setEngine("big/0").setIncarnation(Long.MAX_VALUE).setSequence(Long.MAX_VALUE)
                        .setBrokerSequence(-1L)).build().toByteString()).build());
        requests.put("100,000 model filters", manyModels.build());
        requests.put("100,000 engine filters", manyEngines.build());
        requests.put("an engine filter of 1 MiB", WatchRequest.newBuilder().addEngines(longName).build());
        requests.put("a request of 8 MiB", WatchRequest.newBuilder().setResumeToken(ByteString.copyFrom(
                new byte[8 << 20])).build());
        for (Map.Entry<String, WatchRequest> entry : requests.entrySet()) {
            String outcome = outcome(entry.getValue());
            System.out.println("watch " + entry.getKey() + " -> " + outcome.substring(0, Math.min(160,
                    outcome.length())));
            assertThat(outcome).as(entry.getKey()).matches("(?s)(served: STARTED|INVALID_ARGUMENT: .+"
                    + "|OUT_OF_RANGE: .+|RESOURCE_EXHAUSTED: .+)");
        }
        // The steady watcher went on, and new watchers are served as before.
        publish(3, 3_000_000L);
        long last = nextSequence - 1;
        awaitSequence(steady, last);
        assertThat(outcome(WatchRequest.getDefaultInstance())).isEqualTo("served: STARTED");
        Await.until("only the steady watcher open", Duration.ofSeconds(60),
                () -> daemon.watch().openWatchers() == 1);
    }
}
