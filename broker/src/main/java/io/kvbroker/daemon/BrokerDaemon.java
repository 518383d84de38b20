package io.kvbroker.daemon;

import io.kvbroker.apply.BatchApplier;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.discovery.DnsSource;
import io.kvbroker.discovery.EngineDiscovery;
import io.kvbroker.discovery.EngineSource;
import io.kvbroker.discovery.EngineTarget;
import io.kvbroker.discovery.KubernetesSource;
import io.kvbroker.discovery.StaticSource;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.grpc.ApiSecurity;
import io.kvbroker.grpc.GrpcServer;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.IndexBudget;
import io.kvbroker.ingest.IngestSettings;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.journal.CheckpointScheduler;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.JournalLog;
import io.kvbroker.journal.JournalTrimmer;
import io.kvbroker.lifecycle.Component;
import io.kvbroker.lifecycle.Lifecycle;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.metrics.GrpcMetrics;
import io.kvbroker.metrics.JournalCollector;
import io.kvbroker.metrics.MetricsServer;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.watch.ChangeFeed;
import io.kvbroker.watch.WatchService;
import java.nio.file.Path;
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
 * <p>Design note: the start order is the data's path (the metrics server first so probes answer, simulated engines
 * if asked for, discovery, the journal, which restores the index and the engines' cursors before anything arrives,
 * ingest into the index, the query API, then status), so nothing is fed before what it feeds is ready; stopping in
 * reverse stops taking queries before ingest stops and closes the journal last. Queries are answered only while
 * {@link Readiness} is set: after every component started (recovery included), until stop begins.
 */
public final class BrokerDaemon {
    private static final Logger LOG = LoggerFactory.getLogger(BrokerDaemon.class);

    private final BrokerConfig config;
    private final EngineRegistry registry = new EngineRegistry();
    private final Lifecycle lifecycle;
    private final ZmqIngest ingest;
    private final BlockIndex index;
    private final JournalComponent journal;
    /** Whether the index holds what the journal had (at once when there is no journal). */
    private volatile boolean recovered;
    private final EngineDiscovery discovery;
    private final Optional<MetricsServer> metrics;
    private volatile boolean ready;
    private final GrpcServer grpc;
    private final ChangeFeed feed;
    private final WatchService watch;
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
        MetricsServer metrics = null;
        if (config.get(Settings.SIMULATE_ENGINES) > 0) {
            simulation = new SimulationComponent(config.get(Settings.SIMULATE_ENGINES),
                    config.get(Settings.SIMULATE_BASE_PORT), config.get(Settings.SIMULATE_STEPS_PER_SECOND),
                    config.get(Settings.SIMULATE_REPLAY));
            components.add(simulation);
        }
        SimulationComponent simulated = simulation;
        boolean metered = config.get(Settings.METRICS_PORT) > 0;
        JournalCollector journalMetrics = null;
        double storage = config.get(Settings.INDEX_WEIGHT_STORAGE);
        PrefixScorer.Weights weights = new PrefixScorer.Weights(config.get(Settings.INDEX_WEIGHT_GPU),
                config.get(Settings.INDEX_WEIGHT_CPU), storage, storage * 0.8);
        this.index = new BlockIndex(id -> registry.entry(id).spec().model(), config.get(Settings.INDEX_GRANULARITY),
                weights,
                IndexBudget.of(config.get(Settings.INDEX_BUDGET_MB), config.get(Settings.INDEX_BUDGET_SHARES)));
        this.feed = new ChangeFeed(config.get(Settings.WATCH_BUFFER_BATCHES));
        BatchApplier applier;
        if (!config.get(Settings.JOURNAL_DIR).isEmpty()) {
            JournalLog log = new JournalLog(index, registry, new CheckpointScheduler.Policy(
                    config.get(Settings.JOURNAL_CHECKPOINT_EVERY_BATCHES),
                    config.get(Settings.JOURNAL_CHECKPOINT_INTERVAL_MS)), System::currentTimeMillis);
            if (metered) {
                journalMetrics = new JournalCollector(() -> journal().orElse(null), this::trimmer,
                        log.checkpoints());
            }
            JournalCollector writes = journalMetrics;
            BatchApplier journaled = new BatchApplier(index, log, feed);
            journal = new JournalComponent(journalSettings(config), log, index, registry, this::ingest,
                    () -> {
                        // Watch numbers batches as the log does, under the journal's broker id, and gets only what
                        // the journal wrote, so a crash never takes back what watchers hold.
                        journaled.followLog();
                        recovered = true;
                    }, writes == null ? nanos -> { } : writes::groupWritten);
            components.add(journal);
            applier = journaled;
        } else {
            journal = null;
            applier = new BatchApplier(index, null, feed);
            recovered = true;
        }
        this.ingest = new ZmqIngest(registry, applier, IngestSettings.from(config));
        this.discovery = new EngineDiscovery(registry, EngineTarget.of(ingest::add, ingest::remove, ingest::restart),
                sources(config, simulated),
                config.get(Settings.DISCOVERY_REMOVE_GRACE_MS), System::currentTimeMillis);
        // Discovery registers the engines the journal then restores, before ingest starts creating their streams.
        components.add(journal == null ? components.size() : components.indexOf(journal), discovery);
        components.add(ingest);
        QueryLimits limits = QueryLimits.from(config);
        IndexQueries queries = new IndexQueries(index, registry, ingest::stream,
                new PendingHints(System::currentTimeMillis, limits.maxHintsPerEngine()), System::currentTimeMillis);
        this.watch = new WatchService(feed, index, registry, () -> journal().orElse(null), weights,
                WatchService.Limits.of(config.get(Settings.WATCH_MAX_WATCHERS), config.get(Settings.WATCH_THREADS)));
        GrpcMetrics calls = metered ? new GrpcMetrics() : null;
        this.grpc = new GrpcServer(config.get(Settings.GRPC_HOST), config.get(Settings.GRPC_PORT),
                config.get(Settings.GRPC_MAX_MESSAGE_BYTES), queries, limits, readiness, watch,
                ApiSecurity.from(config), calls);
        components.add(grpc);
        // After the gRPC server, so it stops first: open streams end with UNAVAILABLE before the server drains.
        components.add(new WatchComponent(watch));
        components.add(new StatusReporter(ingest, index, registry,
                simulated == null ? Optional::empty : simulated::sample, config.get(Settings.LOG_STATUS_INTERVAL_MS)));
        if (metered) {
            // First to start and last to stop: probes answer (not ready) while the rest starts and stops.
            metrics = new MetricsServer(config.get(Settings.METRICS_HOST), config.get(Settings.METRICS_PORT), ingest,
                    registry, index, discovery, () -> !ready || ingest.isRunning(), this::notReadyReason)
                    .watch(watch, feed).grpc(calls);
            if (journalMetrics != null) {
                metrics.journal(journalMetrics);
            }
            components.add(0, metrics);
        }
        this.metrics = Optional.ofNullable(metrics);
        components.addAll(extra);
        this.lifecycle = new Lifecycle(components);
    }

    /** The configured engines (and simulated ones), then DNS, then Kubernetes: earlier sources win a clash. */
    private static List<EngineSource> sources(BrokerConfig config, SimulationComponent simulated) {
        List<EngineSource> sources = new ArrayList<>();
        sources.add(new StaticSource(() -> {
            List<EngineSpec> all = new ArrayList<>(config.get(Settings.ENGINES_STATIC));
            if (simulated != null) {
                all.addAll(simulated.specs());
            }
            return all;
        }));
        if (!config.get(Settings.DISCOVERY_DNS_SERVICES).isEmpty()) {
            sources.add(new DnsSource(config.get(Settings.DISCOVERY_DNS_SERVICES),
                    config.get(Settings.DISCOVERY_DNS_INTERVAL_MS), DnsSource.SYSTEM));
        }
        if (config.get(Settings.DISCOVERY_KUBERNETES_ENABLED)) {
            sources.add(KubernetesSource.fromEnvironment(config.get(Settings.DISCOVERY_KUBERNETES_NAMESPACES),
                    config.get(Settings.DISCOVERY_KUBERNETES_LABEL_SELECTOR)));
        }
        return sources;
    }

    public EngineRegistry registry() {
        return registry;
    }

    public ZmqIngest ingest() {
        return ingest;
    }

    /** The Watch streams' service. */
    public WatchService watch() {
        return watch;
    }

    /** The applied batches in broker order, as Watch streams them. */
    public ChangeFeed feed() {
        return feed;
    }

    public BlockIndex index() {
        return index;
    }

    /** Whether recovery from the journal has finished (queries before it would see a partial index). */
    public boolean recovered() {
        return recovered;
    }

    /** The open journal, if there is one and it has started. */
    Optional<Journal> journal() {
        return journal == null ? Optional.empty() : Optional.ofNullable(journal.journal());
    }

    /** The journal's trimmer, once the journal has started; null without one. */
    private JournalTrimmer trimmer() {
        return journal == null ? null : journal.trimmer();
    }

    static JournalComponent.Settings journalSettings(BrokerConfig config) {
        return new JournalComponent.Settings(Path.of(config.get(Settings.JOURNAL_DIR)),
                Journal.Sync.valueOf(config.get(Settings.JOURNAL_SYNC).toUpperCase(java.util.Locale.ROOT)),
                config.get(Settings.JOURNAL_SYNC_INTERVAL_MS), new JournalTrimmer.Retention(
                        config.get(Settings.JOURNAL_RETENTION_MAX_MB) * (1L << 20),
                        config.get(Settings.JOURNAL_RETENTION_MAX_AGE_SECONDS) * 1000L,
                        config.get(Settings.JOURNAL_RETENTION_MAX_BATCHES)),
                config.get(Settings.JOURNAL_START_FRESH));
    }

    public EngineDiscovery discovery() {
        return discovery;
    }

    /** The metrics server, when {@code metrics.port} is not 0. */
    public Optional<MetricsServer> metrics() {
        return metrics;
    }

    /** The port the query API listens on, once started. */
    public int grpcPort() {
        return grpc.port();
    }

    public Readiness readiness() {
        return readiness;
    }

    /**
     * Why {@code /-/ready} fails, or null while the daemon is ready: started, ingesting, and its journal writing.
     *
     * <p>Design note: a journal whose writes fail (a full disk) holds ingest back, so the index stops advancing and
     * its answers age while the engines' lag grows: not ready, so that traffic goes to replicas that keep up. Still
     * live (see the healthy probe): a restart does not free disk space, and the stall ends by itself once it is freed.
     */
    String notReadyReason() {
        if (!ready) {
            return "starting or stopping";
        }
        if (!ingest.isRunning()) {
            return "ingest stopped";
        }
        long stalledSinceMs = journal().map(Journal::stalledSinceMs).orElse(0L);
        if (stalledSinceMs != 0) {
            return String.format(java.util.Locale.ROOT, "journal writes failing for %d s (disk full? see the log):"
                    + " ingest waits, the index does not advance", (System.currentTimeMillis() - stalledSinceMs)
                    / 1000);
        }
        return null;
    }

    /** Starts every component; on failure the ones already started are stopped and the failure is thrown. */
    public void start() throws Exception {
        long begin = System.nanoTime();
        lifecycle.start(drainBudget());
        ready = true;
        readiness.set(true);
        LOG.info("kvbroker {} started in {} ms: {} engines", replicaName(), (System.nanoTime() - begin) / 1_000_000,
                registry.live().size());
    }

    /** Stops everything within the drain timeout; later calls return the first call's report. */
    public synchronized Lifecycle.StopReport stop() {
        if (stopReport == null) {
            ready = false;
            LOG.info("kvbroker stopping (drain timeout {} ms)", drainBudget().toMillis());
            readiness.set(false);
            // A failing journal write is given up from now on rather than retried: with a full disk, ingest waits
            // behind the journal's writer and would hold the stop past the drain timeout. What is given up is
            // replayed from the engines at the next start.
            journal().ifPresent(Journal::stopRetrying);
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
