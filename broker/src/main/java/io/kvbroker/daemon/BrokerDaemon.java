package io.kvbroker.daemon;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.client.PrefixScorer;
import io.kvbroker.grpc.GrpcServer;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.QueryLimits;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts and stops all of kvbroker: builds the components from a validated configuration, starts them in order,
 * and on stop closes them in reverse within the drain timeout.
 *
 * <p>Design note: the start order is the data's path (simulated engines if asked for, the engine registry, ingest
 * into the index, the query API, then status; the journal slots in with persistence), so nothing is fed before what
 * it feeds is ready, and stopping in reverse stops taking queries before ingest stops. Queries are answered only
 * while {@link Readiness} is set: after every component started, until stop begins.
 */
public final class BrokerDaemon {
    private static final Logger LOG = LoggerFactory.getLogger(BrokerDaemon.class);

    private final BrokerConfig config;
    private final EngineRegistry registry = new EngineRegistry();
    private final Lifecycle lifecycle;
    private final ZmqIngest ingest;
    private final BlockIndex index;
    private final GrpcServer grpc;
    private final Readiness readiness = new Readiness();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile Lifecycle.StopReport stopReport;

    public BrokerDaemon(BrokerConfig config) {
        this(config, List.of());
    }

    /** With extra components started after the built-in ones (tests use this to observe ordering). */
    BrokerDaemon(BrokerConfig config, List<Component> extra) {
        this.config = config;
        List<Component> components = new ArrayList<>();
        SimulationComponent simulation = null;
        if (config.get(Settings.SIMULATE_ENGINES) > 0) {
            simulation = new SimulationComponent(config.get(Settings.SIMULATE_ENGINES),
                    config.get(Settings.SIMULATE_BASE_PORT), config.get(Settings.SIMULATE_STEPS_PER_SECOND));
            components.add(simulation);
        }
        SimulationComponent simulated = simulation;
        components.add(new EngineCatalog(registry, () -> {
            List<io.kvbroker.engine.EngineSpec> all = new ArrayList<>(config.get(Settings.ENGINES_STATIC));
            if (simulated != null) {
                all.addAll(simulated.specs());
            }
            return all;
        }));
        double storage = config.get(Settings.INDEX_WEIGHT_STORAGE);
        this.index = new BlockIndex(id -> registry.entry(id).spec().model(), config.get(Settings.INDEX_GRANULARITY),
                new PrefixScorer.Weights(config.get(Settings.INDEX_WEIGHT_GPU), config.get(Settings.INDEX_WEIGHT_CPU),
                        storage, storage * 0.8));
        // The journal slots in between ingest and the index with the persistence issue.
        this.ingest = new ZmqIngest(registry, index, config);
        components.add(ingest);
        QueryLimits limits = QueryLimits.from(config);
        IndexQueries queries = new IndexQueries(index, registry, ingest::stream,
                new PendingHints(System::currentTimeMillis, limits.maxHintsPerEngine()), System::currentTimeMillis);
        this.grpc = new GrpcServer(config.get(Settings.GRPC_HOST), config.get(Settings.GRPC_PORT),
                config.get(Settings.GRPC_MAX_MESSAGE_BYTES), queries, limits, readiness);
        components.add(grpc);
        components.add(new StatusReporter(ingest, index, registry,
                simulated == null ? Optional::empty : simulated::sample, config.get(Settings.LOG_STATUS_INTERVAL_MS)));
        components.addAll(extra);
        this.lifecycle = new Lifecycle(components);
    }

    public EngineRegistry registry() {
        return registry;
    }

    public ZmqIngest ingest() {
        return ingest;
    }

    public BlockIndex index() {
        return index;
    }

    /** The port the query API listens on, once started. */
    public int grpcPort() {
        return grpc.port();
    }

    public Readiness readiness() {
        return readiness;
    }

    /** Starts every component; on failure the ones already started are stopped and the failure is thrown. */
    public void start() throws Exception {
        long begin = System.nanoTime();
        lifecycle.start(drainBudget());
        readiness.set(true);
        LOG.info("kvbroker {} started in {} ms: {} engines", replicaName(), (System.nanoTime() - begin) / 1_000_000,
                registry.live().size());
    }

    /** Stops everything within the drain timeout; later calls return the first call's report. */
    public synchronized Lifecycle.StopReport stop() {
        if (stopReport == null) {
            LOG.info("kvbroker stopping (drain timeout {} ms)", drainBudget().toMillis());
            readiness.set(false);
            stopReport = lifecycle.stop(drainBudget());
            LOG.info("kvbroker stopped{}", stopReport.clean() ? "" : " with problems: failed=" + stopReport.failed()
                    + " timedOut=" + stopReport.timedOut());
            stopped.countDown();
        }
        return stopReport;
    }

    /** Blocks until {@link #stop()} has finished. */
    public void awaitStopped() throws InterruptedException {
        stopped.await();
    }

    private Duration drainBudget() {
        return Duration.ofMillis(config.get(Settings.SHUTDOWN_DRAIN_TIMEOUT_MS));
    }

    String replicaName() {
        String name = config.get(Settings.BROKER_NAME);
        if (!name.isEmpty()) {
            return name;
        }
        String host = System.getenv("HOSTNAME");
        if (host != null && !host.isEmpty()) {
            return host;
        }
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.io.IOException e) {
            return "kvbroker";
        }
    }
}
