package io.kvbroker.grpc;

import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.kvbroker.lifecycle.Component;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.net.ListenFailure;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.watch.WatchService;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the query API ({@code kvbroker.v1.KvIndexService}), the standard health service and server reflection on
 * one port, in plain text or TLS (mutual TLS, bearer tokens: {@link ApiSecurity}); health says SERVING exactly while
 * the daemon is ready.
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
    private final ApiSecurity security;
    private ScheduledExecutorService reloader;

    public GrpcServer(String host, int port, int maxMessageBytes, IndexQueries queries, QueryLimits limits,
            Readiness readiness) {
        this(host, port, maxMessageBytes, queries, limits, readiness, null);
    }

    /** @param watch serves Watch streams; null: Watch answers UNIMPLEMENTED */
    public GrpcServer(String host, int port, int maxMessageBytes, IndexQueries queries, QueryLimits limits,
            Readiness readiness, WatchService watch) {
        this(host, port, maxMessageBytes, queries, limits, readiness, watch, ApiSecurity.PLAINTEXT, null);
    }

    /**
     * @param watch serves Watch streams; null: Watch answers UNIMPLEMENTED
     * @param security plain text, TLS, mutual TLS and bearer tokens
     * @param calls hears how every call ended (metrics); null: nobody
     */
    public GrpcServer(String host, int port, int maxMessageBytes, IndexQueries queries, QueryLimits limits,
            Readiness readiness, WatchService watch, ApiSecurity security, CallObserver calls) {
        this.security = security;
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
        RefusedRequestLog.install();
        ServerCredentials credentials = InsecureServerCredentials.create();
        List<Runnable> checks = new ArrayList<>();
        BearerTokenInterceptor tokens = null;
        try {
            // Files are read before the port opens: a bad one stops start-up naming its setting.
            if (security.tls()) {
                ServerTls tls = new ServerTls(security);
                tls.load();
                credentials = tls.credentials();
                checks.add(tls::check);
            }
            if (security.tokens()) {
                BearerTokenInterceptor interceptor = new BearerTokenInterceptor(security.tokensFile());
                FileWatch watchTokens = new FileWatch("grpc.auth.tokensFile", List.of(security.tokensFile()),
                        interceptor::load);
                watchTokens.loadNow();
                checks.add(watchTokens::check);
                tokens = interceptor;
            }
        } catch (Exception e) {
            executor.shutdownNow();
            throw e instanceof IllegalStateException ? e : new IllegalStateException(e.getMessage(), e);
        }
        try {
            NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(host, port), credentials)
                    .maxInboundMessageSize(maxMessageBytes)
                    .executor(executor)
                    .addService(RequestParsing.guard(new KvIndexGrpcService(queries, limits, readiness, watch)
                            .bindService()))
                    .addService(health.getHealthService())
                    .addService(ProtoReflectionServiceV1.newInstance());
            if (tokens != null) {
                builder.intercept(tokens);
            }
            if (calls != null) {
                // Added last, so it runs first: calls the token check refuses are counted too.
                builder.intercept(new ObservingInterceptor(calls));
            }
            server = builder.build().start();
        } catch (Exception e) {
            executor.shutdownNow();
            throw new IllegalStateException(ListenFailure.message("grpc.port", host, port, e), e);
        }
        readiness.listen(ready -> {
            ServingStatus status = ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
            health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, status);
            health.setStatus(KvIndexServiceGrpc.SERVICE_NAME, status);
        });
        if (!checks.isEmpty()) {
            reloader = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread thread = new Thread(r, "kvbroker-grpc-credentials");
                thread.setDaemon(true);
                return thread;
            });
            reloader.scheduleWithFixedDelay(() -> checks.forEach(Runnable::run), security.reloadIntervalMs(),
                    security.reloadIntervalMs(), TimeUnit.MILLISECONDS);
        }
        LOG.info("gRPC API listening on {}:{} (kvbroker.v1.KvIndexService, health, reflection): {}", host, port(),
                describe(security));
        warnIfOpen(security, host, port());
    }

    private static String describe(ApiSecurity security) {
        String transport = !security.tls() ? "plain text" : security.mutualTls() ? "mutual TLS" : "TLS";
        return transport + (security.tokens() ? ", bearer tokens" : "")
                + (security.tls() || security.tokens() ? ", files checked every " + security.reloadIntervalMs()
                + " ms" : "");
    }

    /** The loud line: an API anyone on the network can read and write must not go unnoticed. */
    private static void warnIfOpen(ApiSecurity security, String host, int port) {
        if (!security.tls() && !security.tokens()) {
            LOG.warn("!!! The gRPC API on {}:{} is UNAUTHENTICATED PLAIN TEXT: anyone who reaches this port can read"
                    + " the index and send Hints. Fine on a laptop or behind a mesh that does mTLS; otherwise set"
                    + " grpc.tls.certFile and grpc.tls.keyFile, and grpc.tls.clientCaFile or grpc.auth.tokensFile"
                    + " (docs/security.md). !!!", host, port);
        } else if (!security.tls()) {
            LOG.warn("The gRPC API on {}:{} checks bearer tokens over PLAIN TEXT: anyone on the path can read a token"
                    + " and reuse it; set grpc.tls.certFile and grpc.tls.keyFile (docs/security.md).", host, port);
        } else if (!security.mutualTls() && !security.tokens()) {
            LOG.warn("The gRPC API on {}:{} uses TLS but lets any client in: set grpc.tls.clientCaFile or"
                    + " grpc.auth.tokensFile to check who calls (docs/security.md).", host, port);
        }
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
        if (reloader != null) {
            reloader.shutdownNow();
        }
    }
}
