package io.kvbroker.metrics;

import com.sun.net.httpserver.HttpExchange;
import io.kvbroker.daemon.Component;
import io.kvbroker.discovery.EngineDiscovery;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.watch.ChangeFeed;
import io.kvbroker.watch.WatchService;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves Prometheus metrics ({@code /metrics}: engines, index, discovery, JVM, and as the daemon adds them Watch, gRPC
 * and the journal) and the HTTP probes on {@code metrics.port}: {@code /-/healthy} (liveness: fails only once a
 * started daemon has lost a part it cannot do without, so the kubelet restarts it) and {@code /-/ready} (started and
 * ingesting).
 *
 * <p>Design note: the server is the Prometheus client's own, on the JDK's HTTP server with its own small thread
 * pool, so a slow scraper never touches the ingest thread; kvbroker's series are computed at scrape time from
 * counters that exist anyway, except the two nothing else counts: gRPC calls and the journal's group write times
 * (see {@link GrpcMetrics}, {@link JournalCollector}). It starts first and stops last, so probes answer (not ready) during start-up and a
 * last scrape can see the shutdown.
 */
public final class MetricsServer implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(MetricsServer.class);

    private final String host;
    private final int port;
    private final BooleanSupplier healthy;
    private final Supplier<String> notReady;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private HTTPServer server;

    /**
     * @param port the port to bind; 0 picks a free one (tests), while {@code metrics.port: 0} means no server at all
     *     and is handled by the daemon, which then does not create this
     * @param healthy false once the daemon is beyond repair (its ingest thread died)
     * @param ready whether the daemon has started and ingest runs
     */
    public MetricsServer(String host, int port, ZmqIngest ingest, EngineRegistry engines, BlockIndex index,
            EngineDiscovery discovery, BooleanSupplier healthy, BooleanSupplier ready) {
        this(host, port, ingest, engines, index, discovery, healthy, () -> ready.getAsBoolean() ? null : "not started");
    }

    /** @param notReady why the daemon is not ready (said in {@code /-/ready}'s 503), or null while it is */
    public MetricsServer(String host, int port, ZmqIngest ingest, EngineRegistry engines, BlockIndex index,
            EngineDiscovery discovery, BooleanSupplier healthy, Supplier<String> notReady) {
        this.host = host;
        this.port = port;
        this.healthy = healthy;
        this.notReady = notReady;
        registry.register(new EngineCollector(ingest, engines, index, System::currentTimeMillis));
        registry.register(new IndexCollector(index, engines));
        registry.register(new DiscoveryCollector(discovery));
        JvmMetrics.builder().register(registry);
    }

    /** Adds the Watch series ({@code kvbroker_watch_*}); before {@link #start}. */
    public MetricsServer watch(WatchService watch, ChangeFeed feed) {
        registry.register(new WatchCollector(watch, feed));
        return this;
    }

    /** Adds the gRPC series ({@code kvbroker_grpc_*}) the server's interceptor feeds; before {@link #start}. */
    public MetricsServer grpc(GrpcMetrics calls) {
        calls.register(registry);
        return this;
    }

    /** Adds the journal series ({@code kvbroker_journal_*}); before {@link #start}. */
    public MetricsServer journal(JournalCollector journal) {
        journal.register(registry);
        return this;
    }

    @Override
    public String name() {
        return "metrics";
    }

    @Override
    public void start() throws IOException {
        try {
            server = HTTPServer.builder().hostname(host).port(port).registry(registry).registerHealthHandler(false)
                    .defaultHandler(this::other).buildAndStart();
        } catch (IOException e) {
            throw new IOException("metrics.port: cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        LOG.info("metrics on http://{}:{}/metrics", host, server.getPort());
    }

    /** The bound port (the chosen one when started with 0). */
    public int port() {
        return server.getPort();
    }

    /** The probes, and a short index page; the library serves {@code /metrics} itself. */
    private void other(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getPath();
        int status;
        String body;
        if (path.equals("/-/healthy")) {
            boolean ok = healthy.getAsBoolean();
            status = ok ? 200 : 503;
            body = ok ? "healthy\n" : "unhealthy: ingest stopped\n";
        } else if (path.equals("/-/ready")) {
            String why = notReady.get();
            status = why == null ? 200 : 503;
            body = why == null ? "ready\n" : "not ready: " + why + "\n";
        } else if (path.equals("/")) {
            status = 200;
            body = "kvbroker: /metrics, /-/healthy, /-/ready\n";
        } else {
            status = 404;
            body = "not found\n";
        }
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public void stop(Duration budget) {
        if (server != null) {
            server.close();
        }
    }
}
