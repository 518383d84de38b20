package io.kvbroker.client;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.kvbroker.core.Media;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import static io.kvbroker.client.WatchMessages.added;
import static io.kvbroker.client.WatchMessages.batch;
import static io.kvbroker.client.WatchMessages.changes;
import static io.kvbroker.client.WatchMessages.repeat;
import static io.kvbroker.client.WatchMessages.snapshot;
import static io.kvbroker.client.WatchMessages.started;
import static org.assertj.core.api.Assertions.assertThat;

/** The watcher's resumes, fail-over, fatal statuses and close, against scripted Watch servers on loopback. */
class KvIndexWatcherTest {
    private static final long[] KEYS = {11, 12, 13};

    /** What the state listener heard, as short strings. */
    private final BlockingQueue<String> events = new LinkedBlockingQueue<>();
    private final WatchStateListener recorder = new WatchStateListener() {
        @Override
        public void connected(String address) {
            events.add("connected " + address);
        }

        @Override
        public void disconnected(String address, Status status) {
            events.add("disconnected " + address + " " + status.getCode());
        }

        @Override
        public void stopped(Throwable failure) {
            events.add("stopped " + (failure == null ? "" : failure.getMessage()));
        }
    };
    private KvIndexWatcher watcher;

    @AfterEach
    void close() {
        if (watcher != null) {
            watcher.close();
        }
    }

    private String nextEvent() throws InterruptedException {
        String event = events.poll(10, TimeUnit.SECONDS);
        assertThat(event).as("a state event within 10 s").isNotNull();
        return event;
    }

    @Test
    void resumesAtOnceFromItsTokenAfterFallingBehind() throws Exception {
        try (ScriptedWatchServer server = new ScriptedWatchServer()) {
            server.then((request, out) -> {
                out.onNext(started("b1", 10, 4, true));
                out.onNext(added(0, "p/0", "m"));
                out.onNext(snapshot(0, 0, true, 4, 9, KEYS, repeat(1, 3), repeat(Media.GPU, 3)));
                out.onNext(changes(batch(0, 5, 11, false, new long[] {14}, new int[] {1}, new int[] {Media.GPU})));
                out.onError(Status.ABORTED.withDescription("fell behind").asRuntimeException());
            }).then((request, out) -> {
                out.onNext(started("b1", 12, 4, false));
                out.onNext(added(0, "p/0", "m"));
                out.onNext(changes(batch(0, 6, 12, false, new long[] {15}, new int[] {1}, new int[] {Media.GPU})));
                // Ends the test's watcher, so that everything it did has been counted.
                out.onError(Status.FAILED_PRECONDITION.asRuntimeException());
            });
            IndexMirror mirror = new IndexMirror();
            watcher = KvIndexWatcher.builder(List.of(server.address()), mirror).stateListener(recorder)
                    .initialBackoff(Duration.ofSeconds(30)).build();
            watcher.start();

            assertThat(server.nextRequest().getResumeToken().isEmpty()).isTrue();
            ResumeToken token = ResumeToken.parseFrom(server.nextRequest().getResumeToken());
            assertThat(token.getBrokerId()).isEqualTo("b1");
            assertThat(token.getEngines(0).getSequence()).isEqualTo(5);
            assertThat(token.getEngines(0).getBrokerSequence()).isEqualTo(11);
            assertThat(nextEvent()).isEqualTo("connected " + server.address());
            assertThat(nextEvent()).isEqualTo("disconnected " + server.address() + " ABORTED");
            assertThat(nextEvent()).isEqualTo("connected " + server.address());
            assertThat(nextEvent()).isEqualTo("disconnected " + server.address() + " FAILED_PRECONDITION");
            assertThat(nextEvent()).startsWith("stopped FAILED_PRECONDITION");
            assertThat(watcher.positions().position("p/0").getSequence()).isEqualTo(6);
            assertThat(mirror.holdings(0)).containsOnlyKeys(11L, 12L, 13L, 14L, 15L);
            assertThat(watcher.counters()).isEqualTo(new KvIndexWatcher.Counters(2, 1, 1, 2, 1));
        }
    }

    @Test
    void failsOverToTheNextAddressWhenOneIsUnavailable() throws Exception {
        String dead;
        try (ScriptedWatchServer gone = new ScriptedWatchServer()) {
            dead = gone.address();
        }
        try (ScriptedWatchServer server = new ScriptedWatchServer()) {
            server.then((request, out) -> {
                out.onNext(started("b2", 1, 4, true));
                out.onNext(added(3, "p/0", "m"));
                out.onNext(changes(batch(3, 1, 1, false, KEYS, repeat(1, 3), repeat(Media.GPU, 3))));
                out.onCompleted();
            }).then((request, out) -> out.onNext(started("b2", 2, 4, false)));
            IndexMirror mirror = new IndexMirror();
            watcher = KvIndexWatcher.builder(List.of(dead, server.address()), mirror).stateListener(recorder)
                    .initialBackoff(Duration.ofMillis(1)).build();
            watcher.start();

            assertThat(nextEvent()).isEqualTo("disconnected " + dead + " UNAVAILABLE");
            assertThat(nextEvent()).isEqualTo("connected " + server.address());
            // The broker ended the stream: the dead address first (right away), then back here after a backoff.
            assertThat(nextEvent()).isEqualTo("disconnected " + server.address() + " UNAVAILABLE");
            assertThat(nextEvent()).isEqualTo("disconnected " + dead + " UNAVAILABLE");
            assertThat(nextEvent()).isEqualTo("connected " + server.address());
            assertThat(server.nextRequest().getResumeToken().isEmpty()).isTrue();
            assertThat(ResumeToken.parseFrom(server.nextRequest().getResumeToken()).getEngines(0).getEngine())
                    .isEqualTo("p/0");
            assertThat(mirror.score("m", null, new int[0], 0, 0)).isEmpty();
            assertThat(mirror.scoreKeys(KEYS, 0, 0)).singleElement()
                    .satisfies(s -> assertThat(s.gpuBlocks()).isEqualTo(3));
            assertThat(watcher.currentAddress()).isEqualTo(server.address());
        }
    }

    @Test
    void aFatalStatusStopsTheWatcher() throws Exception {
        try (ScriptedWatchServer server = new ScriptedWatchServer()) {
            server.then((request, out) -> out.onError(Status.INVALID_ARGUMENT.withDescription("engines: bad name")
                    .asRuntimeException()));
            watcher = KvIndexWatcher.builder(List.of(server.address()), message -> {
            }).stateListener(recorder).build();
            watcher.start();
            assertThat(nextEvent()).isEqualTo("disconnected " + server.address() + " INVALID_ARGUMENT");
            assertThat(nextEvent()).startsWith("stopped INVALID_ARGUMENT");
            assertThat(watcher.failure()).isInstanceOf(StatusRuntimeException.class);
        }
    }

    @Test
    void aListenerThatThrowsStopsTheWatcherWithoutMovingTheToken() throws Exception {
        try (ScriptedWatchServer server = new ScriptedWatchServer()) {
            server.then((request, out) -> {
                out.onNext(started("b1", 1, 4, true));
                out.onNext(changes(batch(7, 1, 1, false, KEYS, repeat(1, 3), repeat(Media.GPU, 3))));
            });
            watcher = KvIndexWatcher.builder(List.of(server.address()), new IndexMirror()).stateListener(recorder)
                    .build();
            watcher.start();
            assertThat(nextEvent()).isEqualTo("connected " + server.address());
            assertThat(nextEvent()).contains("stopped", "engine id 7");
            assertThat(watcher.failure()).isInstanceOf(IllegalStateException.class);
            assertThat(ResumeToken.parseFrom(watcher.token()).getEnginesList()).isEmpty();
        }
    }

    @Test
    void closeCancelsTheStreamAtOnce() throws Exception {
        CountDownLatch cancelled = new CountDownLatch(1);
        try (ScriptedWatchServer server = new ScriptedWatchServer()) {
            server.then((request, out) -> {
                ((ServerCallStreamObserver<WatchResponse>) out).setOnCancelHandler(cancelled::countDown);
                out.onNext(started("b1", 1, 4, true));
            });
            watcher = KvIndexWatcher.builder(List.of(server.address()), message -> {
            }).stateListener(recorder).build();
            watcher.start();
            assertThat(nextEvent()).isEqualTo("connected " + server.address());
            watcher.close();
            assertThat(watcher.isRunning()).isFalse();
            assertThat(nextEvent()).isEqualTo("stopped ");
            assertThat(cancelled.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(watcher.failure()).isNull();
        }
    }
}
