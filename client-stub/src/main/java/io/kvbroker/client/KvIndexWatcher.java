package io.kvbroker.client;

import com.google.protobuf.ByteString;
import io.grpc.CallOptions;
import io.grpc.ChannelCredentials;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Keeps a Watch stream open on one of several broker replicas and hands its messages to a {@link WatchListener} (an
 * {@link IndexMirror}, typically), resuming from its own token after every disconnect.
 *
 * <p>Resumes: ABORTED (the server ended a watcher that fell too far behind) resumes at once from the same address;
 * UNAVAILABLE, a cancel or an end of stream from the server resumes on the next address, right away until every
 * address has failed in a row and after an exponential backoff (capped) from then on; any other status, or a
 * listener that throws, stops the watcher and is reported as its {@link #failure()}. The token moves past a message
 * only after the listener applied it.
 *
 * <p>Design note: a blocking server-streaming call on its own daemon thread: the thread reads the next message only
 * after the listener applied the last, so gRPC's flow control holds a slow listener's stream at the server, and the
 * server's "fell behind" rule, not a queue here, bounds the lag. {@link #close()} cancels the call's context, which
 * wakes the blocked read at once.
 */
public final class KvIndexWatcher implements AutoCloseable {
    /**
     * What the watcher has done so far.
     *
     * @param streamsOpened streams that started (their {@code started} message was applied)
     * @param resumes of those, streams opened with a non-empty token
     * @param snapshotsReceived engine snapshots applied whole (their last part)
     * @param batchesReceived engine batches applied
     * @param fellBehind streams the server ended with ABORTED
     */
    public record Counters(long streamsOpened, long resumes, long snapshotsReceived, long batchesReceived,
            long fellBehind) {
    }

    private final List<String> addresses;
    private final WatchListener listener;
    private final WatchStateListener stateListener;
    private final WatchPositions positions;
    private final List<String> models;
    private final List<String> engines;
    private final long initialBackoffNanos;
    private final long maxBackoffNanos;
    private final List<ManagedChannel> channels = new ArrayList<>();
    private final BrokerAccess access;
    private final CallOptions callOptions;
    private final Thread thread;
    private final CountDownLatch closing = new CountDownLatch(1);
    private volatile Context.CancellableContext call;
    private volatile String currentAddress;
    private volatile Throwable failure;
    // Written by the watcher's thread only.
    private volatile long streamsOpened;
    private volatile long resumes;
    private volatile long snapshotsReceived;
    private volatile long batchesReceived;
    private volatile long fellBehind;

    /** Settings of a watcher; defaults: no filter, an empty token, backoff 100 ms doubling up to 10 s. */
    public static final class Builder {
        private final List<String> addresses;
        private final WatchListener listener;
        private WatchStateListener stateListener = new WatchStateListener() {
        };
        private byte[] token = new byte[0];
        private List<String> models = List.of();
        private List<String> engines = List.of();
        private Duration initialBackoff = Duration.ofMillis(100);
        private Duration maxBackoff = Duration.ofSeconds(10);
        private final BrokerAccess access = new BrokerAccess();

        private Builder(List<String> addresses, WatchListener listener) {
            if (addresses.isEmpty()) {
                throw new IllegalArgumentException("at least one broker address (host:port) is needed");
            }
            this.addresses = List.copyOf(addresses);
            this.listener = listener;
        }

        /** Hears streams start and end. */
        public Builder stateListener(WatchStateListener value) {
            this.stateListener = value;
            return this;
        }

        /**
         * Where to resume: a token from {@link #token()} of an earlier watcher (empty: start with snapshots). Only
         * for a listener that still holds what the token describes: a fresh {@link IndexMirror} starts without one.
         */
        public Builder token(byte[] value) {
            this.token = value.clone();
            return this;
        }

        /** Watch only engines serving these models (empty: all). */
        public Builder models(List<String> value) {
            this.models = List.copyOf(value);
            return this;
        }

        /** Watch only these engines, named "pod/rank" (empty: all). */
        public Builder engines(List<String> value) {
            this.engines = List.copyOf(value);
            return this;
        }

        /** The pause once every address has failed, doubled for each further failure up to {@link #maxBackoff}. */
        public Builder initialBackoff(Duration value) {
            this.initialBackoff = value;
            return this;
        }

        public Builder maxBackoff(Duration value) {
            this.maxBackoff = value;
            return this;
        }

        /** {@code TlsChannelCredentials} for a TLS broker (a key manager for mutual TLS); default: plain text. */
        public Builder credentials(ChannelCredentials value) {
            access.credentials(value);
            return this;
        }

        /** Sends {@code authorization: Bearer TOKEN} with every call (for {@code grpc.auth.tokensFile}). */
        public Builder bearerToken(String token) {
            access.bearerToken(token);
            return this;
        }

        /** A watcher, not started yet. */
        public KvIndexWatcher build() {
            return new KvIndexWatcher(this);
        }
    }

    /**
     * @param addresses broker replicas as {@code host:port}, tried in this order
     * @param listener applies each message (on the watcher's thread)
     */
    public static Builder builder(List<String> addresses, WatchListener listener) {
        return new Builder(addresses, listener);
    }

    private KvIndexWatcher(Builder builder) {
        this.addresses = builder.addresses;
        this.listener = builder.listener;
        this.stateListener = builder.stateListener;
        this.positions = WatchPositions.fromToken(builder.token);
        this.models = builder.models;
        this.engines = builder.engines;
        this.initialBackoffNanos = builder.initialBackoff.toNanos();
        this.maxBackoffNanos = Math.max(initialBackoffNanos, builder.maxBackoff.toNanos());
        this.access = builder.access;
        this.callOptions = access.callOptions();
        this.thread = new Thread(this::run, "kvbroker-watch");
        thread.setDaemon(true);
    }

    /** Opens the first stream on the watcher's own thread. */
    public void start() {
        for (String address : addresses) {
            channels.add(access.channel(address));
        }
        thread.start();
    }

    /** The token to resume from: what the listener has applied. Any thread. */
    public byte[] token() {
        return positions.token();
    }

    /** Positions and progress of what the listener has applied. */
    public WatchPositions positions() {
        return positions;
    }

    /** The address of the current (or last) stream, or null before the first. */
    public String currentAddress() {
        return currentAddress;
    }

    /** Why the watcher stopped on its own, or null while it runs (or after {@link #close()}). */
    public Throwable failure() {
        return failure;
    }

    /** Whether the watcher's thread is running. */
    public boolean isRunning() {
        return thread.isAlive();
    }

    public Counters counters() {
        return new Counters(streamsOpened, resumes, snapshotsReceived, batchesReceived, fellBehind);
    }

    /** Stops the stream at once and waits for the watcher's thread (5 s at most); idempotent. */
    @Override
    public void close() {
        closing.countDown();
        Context.CancellableContext current = call;
        if (current != null) {
            current.cancel(null);
        }
        if (thread.isAlive() && thread != Thread.currentThread()) {
            try {
                thread.join(TimeUnit.SECONDS.toMillis(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (ManagedChannel channel : channels) {
            channel.shutdownNow();
        }
    }

    private boolean closed() {
        return closing.getCount() == 0;
    }

    private void run() {
        int index = 0;
        int failures = 0;
        Throwable stop = null;
        while (!closed()) {
            String address = addresses.get(index);
            currentAddress = address;
            Ended ended;
            try {
                ended = stream(index);
            } catch (RuntimeException e) {
                stop = e;
                break;
            }
            if (closed()) {
                break;
            }
            stateListener.disconnected(address, ended.status);
            Status.Code code = ended.status.getCode();
            if (code == Status.Code.ABORTED) {
                fellBehind++;
                failures = 0;
                continue;
            }
            if (code != Status.Code.UNAVAILABLE && code != Status.Code.CANCELLED) {
                stop = ended.status.asRuntimeException();
                break;
            }
            // A stream that started was a working replica: its end starts the count of failures anew.
            failures = ended.started ? 1 : failures + 1;
            index = (index + 1) % addresses.size();
            if (failures >= addresses.size() && !pause(backoffNanos(failures - addresses.size()))) {
                break;
            }
        }
        failure = stop;
        stateListener.stopped(stop);
    }

    /** How a stream ended: whether it had started, and its status (UNAVAILABLE for an end without one). */
    private record Ended(boolean started, Status status) {
    }

    /** Runs one stream to its end; a listener's exception passes through. */
    private Ended stream(int index) {
        byte[] token = positions.token();
        WatchRequest request = WatchRequest.newBuilder().setResumeToken(ByteString.copyFrom(token))
                .addAllModels(models).addAllEngines(engines).build();
        Context.CancellableContext context = Context.current().withCancellation();
        call = context;
        if (closed()) {
            context.cancel(null);
        }
        Context previous = context.attach();
        boolean started = false;
        try {
            Iterator<WatchResponse> messages = ClientCalls.blockingServerStreamingCall(channels.get(index),
                    KvIndexServiceGrpc.getWatchMethod(), callOptions, request);
            while (messages.hasNext()) {
                WatchResponse message = messages.next();
                listener.onMessage(message);
                positions.onMessage(message);
                switch (message.getEventCase()) {
                    case STARTED -> {
                        started = true;
                        streamsOpened++;
                        if (token.length > 0) {
                            resumes++;
                        }
                        stateListener.connected(addresses.get(index));
                    }
                    case SNAPSHOT -> snapshotsReceived += message.getSnapshot().getLastPart() ? 1 : 0;
                    case CHANGES -> batchesReceived += message.getChanges().getBatchesCount();
                    default -> {
                    }
                }
            }
            return new Ended(started, Status.UNAVAILABLE.withDescription("the broker ended the stream"));
        } catch (StatusRuntimeException e) {
            return new Ended(started, e.getStatus());
        } finally {
            context.detach(previous);
            context.cancel(null);
        }
    }

    /** Sleeps before the next attempt unless closed meanwhile; false when closed. */
    private boolean pause(long nanos) {
        try {
            return !closing.await(nanos, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The pause after {@code doublings + 1} failures in a row beyond one per address. */
    private long backoffNanos(int doublings) {
        long nanos = initialBackoffNanos << Math.min(doublings, 30);
        return nanos <= 0 || nanos > maxBackoffNanos ? maxBackoffNanos : nanos;
    }
}
