package io.kvbroker.grpc;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.kvbroker.daemon.Component;
import io.kvbroker.daemon.Readiness;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.watch.WatchService;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the query API ({@code kvbroker.v1.KvIndexService}), the standard health service and server reflection on
 * one port; health says SERVING exactly while the daemon is ready.
 *
 * <p>Design note: calls run on a fixed pool of one thread per core, not on Netty's event loops (a Lookup by engine
 * hashes or a ListEngines over thousands of engines takes milliseconds) and not on an unbounded pool (the index
 * keeps per-thread query buffers). On stop, health turns NOT_SERVING first so that load balancers move away, then
 * the server stops taking calls and lets running ones finish within half the budget.
 */
public final class GrpcServer implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(GrpcServer.class);

    private final String host;
    private final int port;
    private final int maxMessageBytes;
    private final IndexQueries queries;
    private final QueryLimits limits;
    private final Readiness readiness;
    private ExecutorService executor;
    private HealthStatusManager health;
    private Server server;
    private boolean stopped;
    private final WatchService watch;
    private final CallObserver calls;

    public GrpcServer(String host, int port, int maxMessageBytes, IndexQueries queries, QueryLimits limits,
            Readiness readiness) {
        this(host, port, maxMessageBytes, queries, limits, readiness, null);
    }

    /** @param watch serves Watch streams; null: Watch answers UNIMPLEMENTED */
    public GrpcServer(String host, int port, int maxMessageBytes, IndexQueries queries, QueryLimits limits,
            Readiness readiness, WatchService watch) {
        this(host, port, maxMessageBytes, queries, limits, readiness, watch, null);
    }

    /**
     * @param watch serves Watch streams; null: Watch answers UNIMPLEMENTED
     * @param calls hears how every call ended (metrics); null: nobody
     */
    public GrpcServer(String host, int port, int maxMessageBytes, IndexQueries queries, QueryLimits limits,
            Readiness readiness, WatchService watch, CallObserver calls) {
        this.watch = watch;
        this.calls = calls;
        this.host = host;
        this.port = port;
        this.maxMessageBytes = maxMessageBytes;
        this.queries = queries;
        this.limits = limits;
        this.readiness = readiness;
    }

    @Override
    public String name() {
        return "grpc";
    }

    @Override
    public void start() throws Exception {
        AtomicInteger threads = new AtomicInteger();
        executor = Executors.newFixedThreadPool(Math.max(2, Runtime.getRuntime().availableProcessors()), r -> {
            Thread thread = new Thread(r, "kvbroker-grpc-" + threads.getAndIncrement());
            thread.setDaemon(true);
            return thread;
        });
        health = new HealthStatusManager();
        try {
            NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                    .maxInboundMessageSize(maxMessageBytes)
                    .executor(executor)
                    .addService(new KvIndexGrpcService(queries, limits, readiness, watch))
                    .addService(health.getHealthService())
                    .addService(ProtoReflectionServiceV1.newInstance());
            if (calls != null) {
                builder.intercept(new ObservingInterceptor(calls));
            }
            server = builder.build().start();
        } catch (Exception e) {
            executor.shutdownNow();
            throw new IllegalStateException("cannot serve gRPC on " + host + ":" + port + " (grpc.port): "
                    + e.getMessage(), e);
        }
        readiness.listen(ready -> {
            ServingStatus status = ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
            health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, status);
            health.setStatus(KvIndexServiceGrpc.SERVICE_NAME, status);
        });
        LOG.info("gRPC API listening on {}:{} (kvbroker.v1.KvIndexService, health, reflection)", host, port());
    }

    /** The port the server listens on (the one chosen when {@code grpc.port} is 0). */
    public int port() {
        return server.getPort();
    }

    @Override
    public synchronized void stop(Duration budget) throws InterruptedException {
        if (server == null || stopped) {
            return;
        }
        stopped = true;
        health.enterTerminalState();
        server.shutdown();
        if (!server.awaitTermination(Math.max(1, budget.toMillis() / 2), TimeUnit.MILLISECONDS)) {
            server.shutdownNow();
            server.awaitTermination(Math.max(1, budget.toMillis() / 4), TimeUnit.MILLISECONDS);
        }
        executor.shutdownNow();
    }
}
