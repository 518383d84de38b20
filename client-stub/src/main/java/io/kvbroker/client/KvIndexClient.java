package io.kvbroker.client;

import io.grpc.CallOptions;
import io.grpc.ChannelCredentials;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.kvbroker.proto.v1.HintRequest;
import io.kvbroker.proto.v1.HintResponse;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ListEnginesRequest;
import io.kvbroker.proto.v1.ListEnginesResponse;
import io.kvbroker.proto.v1.LookupRequest;
import io.kvbroker.proto.v1.LookupResponse;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A gateway's client of the query API over one or more broker replicas: every call has a deadline, and a call that
 * gets UNAVAILABLE (a replica starting, stopping or unreachable) is tried again on the next address, with a short
 * backoff, until it succeeds, the attempts run out or the deadline passes.
 *
 * <p>Design note: all four calls are idempotent (a repeated Hint only refreshes its time to live), so retrying them
 * is always safe. The deadline covers all attempts of a call, not each one: a caller's latency budget is one number.
 * The client keeps one channel per address and sticks to the address that answered last, so a healthy replica is
 * not left for a recovering one. Thread-safe; close it to release the channels.
 */
public final class KvIndexClient implements AutoCloseable {
    private final List<String> addresses;
    private final List<ManagedChannel> channels;
    private final Duration deadline;
    private final int maxAttempts;
    private final Duration backoff;
    private final CallOptions callOptions;
    private volatile int preferred;

    /** Settings of a client; defaults: 1 s deadline, 3 attempts, 20 ms backoff. */
    public static final class Builder {
        private final List<String> addresses;
        private Duration deadline = Duration.ofSeconds(1);
        private int maxAttempts = 3;
        private Duration backoff = Duration.ofMillis(20);
        private final BrokerAccess access = new BrokerAccess();

        private Builder(List<String> addresses) {
            if (addresses.isEmpty()) {
                throw new IllegalArgumentException("at least one broker address (host:port) is needed");
            }
            this.addresses = List.copyOf(addresses);
        }

        /** The time one call may take, all attempts included. */
        public Builder deadline(Duration value) {
            this.deadline = value;
            return this;
        }

        /** How many times a call is sent in all when it gets UNAVAILABLE (at least 1). */
        public Builder maxAttempts(int value) {
            if (value < 1) {
                throw new IllegalArgumentException("maxAttempts must be at least 1, was " + value);
            }
            this.maxAttempts = value;
            return this;
        }

        /** The pause before a retry, doubled for each retry of the same call. */
        public Builder backoff(Duration value) {
            this.backoff = value;
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

        public KvIndexClient build() {
            return new KvIndexClient(this);
        }
    }

    /** @param addresses broker replicas as {@code host:port}, tried in this order */
    public static Builder builder(List<String> addresses) {
        return new Builder(addresses);
    }

    private KvIndexClient(Builder builder) {
        this.addresses = builder.addresses;
        this.deadline = builder.deadline;
        this.maxAttempts = builder.maxAttempts;
        this.backoff = builder.backoff;
        this.callOptions = builder.access.callOptions();
        this.channels = new ArrayList<>();
        for (String address : addresses) {
            channels.add(builder.access.channel(address));
        }
    }

    public ScoreResponse score(ScoreRequest request) {
        return call(KvIndexServiceGrpc.getScoreMethod(), request);
    }

    public LookupResponse lookup(LookupRequest request) {
        return call(KvIndexServiceGrpc.getLookupMethod(), request);
    }

    /** The current engines (not the removed ones). */
    public ListEnginesResponse listEngines() {
        return listEngines(ListEnginesRequest.getDefaultInstance());
    }

    public ListEnginesResponse listEngines(ListEnginesRequest request) {
        return call(KvIndexServiceGrpc.getListEnginesMethod(), request);
    }

    public HintResponse hint(HintRequest request) {
        return call(KvIndexServiceGrpc.getHintMethod(), request);
    }

    /** The address that answered last (or the first one): where the next call goes first. */
    public String currentAddress() {
        return addresses.get(preferred);
    }

    private <Q, R> R call(MethodDescriptor<Q, R> method, Q request) {
        Deadline callDeadline = Deadline.after(deadline.toNanos(), TimeUnit.NANOSECONDS);
        int start = preferred;
        StatusRuntimeException last = null;
        for (int attempt = 0; attempt < maxAttempts; attempt++) {
            int index = (start + attempt) % channels.size();
            if (attempt > 0 && !pause(backoff.toNanos() << Math.min(attempt - 1, 16), callDeadline)) {
                break;
            }
            try {
                R response = ClientCalls.blockingUnaryCall(channels.get(index),
                        method, callOptions.withDeadline(callDeadline), request);
                preferred = index;
                return response;
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
                    throw e;
                }
                last = e;
            }
        }
        if (callDeadline.isExpired()) {
            throw Status.DEADLINE_EXCEEDED.withDescription("no answer from " + addresses + " within "
                    + deadline.toMillis() + " ms" + (last == null ? "" : "; last: " + last.getStatus()))
                    .withCause(last).asRuntimeException();
        }
        throw last;
    }

    /** Sleeps before a retry; false when the deadline would pass first (or the thread is interrupted). */
    private static boolean pause(long nanos, Deadline callDeadline) {
        if (callDeadline.timeRemaining(TimeUnit.NANOSECONDS) <= nanos) {
            return false;
        }
        try {
            TimeUnit.NANOSECONDS.sleep(nanos);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    @Override
    public void close() {
        for (ManagedChannel channel : channels) {
            channel.shutdownNow();
        }
        for (ManagedChannel channel : channels) {
            try {
                channel.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
