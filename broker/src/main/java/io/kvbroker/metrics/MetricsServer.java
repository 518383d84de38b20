package io.kvbroker.metrics;

import io.kvbroker.config.Settings;
import io.kvbroker.discovery.EngineDiscovery;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.lifecycle.Component;
import io.kvbroker.metrics.BoundedHttpServer.Request;
import io.kvbroker.metrics.BoundedHttpServer.Response;
import io.kvbroker.watch.ChangeFeed;
import io.kvbroker.watch.WatchService;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.prometheus.metrics.exporter.common.PrometheusScrapeHandler;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
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
 * <p>Design note: the HTTP server is {@link BoundedHttpServer} (Netty, with a request deadline and a connection cap,
 * so that slow clients cannot take the probes down) around the Prometheus client's own scrape handler, on threads of
 * its own, so a slow scraper never touches the ingest thread; kvbroker's series are computed at scrape time from
 * counters that exist anyway, except the two nothing else counts: gRPC calls and the journal's group write times
 * (see {@link GrpcMetrics}, {@link JournalCollector}). It starts first and stops last, so probes answer (not ready)
 * during start-up and a last scrape can see the shutdown.
 */
public final class MetricsServer implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(MetricsServer.class);

    private final String host;
    private final int port;
    private final BooleanSupplier healthy;
    private final Supplier<String> notReady;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusScrapeHandler scrapeHandler = new PrometheusScrapeHandler(registry);
    private ExecutorService scrapes;
    private BoundedHttpServer server;

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
        scrapes = Executors.newSingleThreadExecutor(r -> {
            Thread thread = new Thread(r, "kvbroker-metrics-scrape");
            thread.setDaemon(true);
            return thread;
        });
        try {
            server = new BoundedHttpServer(Settings.METRICS_PORT.key(), host, port, "kvbroker-metrics", this::answer);
        } catch (IOException e) {
            scrapes.shutdownNow();
            throw e;
        }
        LOG.info("metrics on http://{}:{}/metrics", host, server.port());
    }

    /** The bound port (the chosen one when started with 0). */
    public int port() {
        return server.port();
    }

    /**
     * The probes and the index page on the event loop (they read two flags); {@code /metrics} on the scrape thread,
     * so that a slow scrape never holds a probe.
     */
    private CompletableFuture<Response> answer(Request request) {
        String path = new QueryStringDecoder(request.uri()).path();
        return switch (path) {
            case "/metrics" -> CompletableFuture.supplyAsync(() -> scrape(request), scrapes);
            case "/-/healthy" -> CompletableFuture.completedFuture(healthy.getAsBoolean()
                    ? Response.text(200, "healthy\n") : Response.text(503, "unhealthy: ingest stopped\n"));
            case "/-/ready" -> {
                String why = notReady.get();
                yield CompletableFuture.completedFuture(why == null ? Response.text(200, "ready\n")
                        : Response.text(503, "not ready: " + why + "\n"));
            }
            case "/" -> CompletableFuture.completedFuture(Response.text(200,
                    "kvbroker: /metrics, /-/healthy, /-/ready\n"));
            default -> CompletableFuture.completedFuture(Response.text(404, "not found\n"));
        };
    }

    /** The Prometheus client's own scrape handler (formats, {@code name[]} filters, gzip) over one request. */
    private Response scrape(Request request) {
        ScrapeExchange exchange = new ScrapeExchange(request);
        try {
            scrapeHandler.handleRequest(exchange);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return exchange.response();
    }

    @Override
    public void stop(Duration budget) {
        if (server != null) {
            server.stop(budget);
        }
        if (scrapes != null) {
            scrapes.shutdownNow();
        }
    }
}
