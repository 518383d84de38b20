package io.kvbroker.client;

import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import java.io.IOException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;

/**
 * A test double of the network: a real gRPC server on a loopback port that implements only Watch, answering each call
 * with the next script and recording its request.
 */
final class ScriptedWatchServer implements AutoCloseable {
    private final BlockingQueue<BiConsumer<WatchRequest, StreamObserver<WatchResponse>>> scripts =
            new LinkedBlockingQueue<>();
    final BlockingQueue<WatchRequest> requests = new LinkedBlockingQueue<>();
    private final Server server;

    ScriptedWatchServer() throws IOException {
        server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
                .addService(new KvIndexServiceGrpc.KvIndexServiceImplBase() {
                    @Override
                    public void watch(WatchRequest request, StreamObserver<WatchResponse> responses) {
                        requests.add(request);
                        BiConsumer<WatchRequest, StreamObserver<WatchResponse>> script = scripts.poll();
                        if (script == null) {
                            responses.onError(io.grpc.Status.UNAVAILABLE.withDescription("no script left")
                                    .asRuntimeException());
                        } else {
                            script.accept(request, responses);
                        }
                    }
                }).build().start();
    }

    /** Answers the next call with {@code script}. */
    ScriptedWatchServer then(BiConsumer<WatchRequest, StreamObserver<WatchResponse>> script) {
        scripts.add(script);
        return this;
    }

    String address() {
        return "127.0.0.1:" + server.getPort();
    }

    WatchRequest nextRequest() throws InterruptedException {
        WatchRequest request = requests.poll(10, TimeUnit.SECONDS);
        if (request == null) {
            throw new AssertionError("no Watch call within 10 s");
        }
        return request;
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
}
