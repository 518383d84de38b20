package io.kvbroker.discovery;

import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.lifecycle.Component;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the registered engines equal to what the discovery sources report: registers new engines, retires engines
 * missing for longer than the grace period, replaces an engine whose address changed, and restarts one whose process
 * instance changed.
 *
 * <p>Design note: sources report whole sets and this class diffs them against what it registered, under one lock, so
 * sources need no memory and the order of their reports does not matter. An engine that goes missing (a pod not
 * Ready, an address not resolved) keeps its id and blocks for {@code discovery.removeGraceMs}: a rolling restart or a
 * DNS blip does not throw away a warm cache, while an engine that is really gone is cleared. The same key with a
 * different spec (a pod back with a new IP) is a new engine with a new id, because nothing it held before is known
 * to be there. When two sources report one key differently, the earlier source in the list wins.
 */
public final class EngineDiscovery implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(EngineDiscovery.class);
    private static final long NOT_MISSING = -1;

    /** Counters and sizes, for metrics and status. */
    public record Snapshot(Map<String, Integer> reportedBySource, int registered, int missing, long added,
            long removed, long replaced, long restarts, long refused) {
    }

    /** An engine this class registered. */
    private static final class Tracked {
        final int id;
        final EngineSpec spec;
        String instance;
        long missingSinceMs = NOT_MISSING;

        Tracked(int id, EngineSpec spec, String instance) {
            this.id = id;
            this.spec = spec;
            this.instance = instance;
        }
    }

    private final EngineRegistry registry;
    private final EngineTarget target;
    private final List<EngineSource> sources;
    private final long removeGraceMs;
    private final LongSupplier clock;
    private final Map<String, Set<DiscoveredEngine>> reported = new LinkedHashMap<>();
    private final Map<EngineKey, Tracked> tracked = new HashMap<>();
    /** Specs refused or in conflict, logged once each rather than on every pass. */
    private final Set<Object> warned = new HashSet<>();
    private long added;
    private long removed;
    private long replaced;
    private long restarts;
    private long refused;
    private ScheduledExecutorService scheduler;

    public EngineDiscovery(EngineRegistry registry, EngineTarget target, List<EngineSource> sources,
            long removeGraceMs, LongSupplier clock) {
        this.registry = registry;
        this.target = target;
        this.sources = List.copyOf(sources);
        this.removeGraceMs = removeGraceMs;
        this.clock = clock;
        for (EngineSource source : this.sources) {
            // Sources merge in list order whatever order they first report in.
            reported.put(source.name(), Set.of());
        }
    }

    @Override
    public String name() {
        return "discovery";
    }

    @Override
    public void start() throws Exception {
        scheduler = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "kvbroker-discovery");
            thread.setDaemon(true);
            return thread;
        });
        List<EngineSource> started = new ArrayList<>();
        try {
            for (EngineSource source : sources) {
                source.start(engines -> report(source.name(), engines), scheduler);
                started.add(source);
            }
        } catch (Exception e) {
            for (EngineSource source : started) {
                source.stop();
            }
            scheduler.shutdownNow();
            throw e;
        }
        long tickMs = Math.max(10, Math.min(1_000, removeGraceMs / 4));
        scheduler.scheduleWithFixedDelay(this::reconcileSafely, tickMs, tickMs, TimeUnit.MILLISECONDS);
        Snapshot snapshot = snapshot();
        LOG.info("discovery: {} engines from {}", snapshot.registered(), snapshot.reportedBySource());
    }

    /** Takes a source's whole current set and applies the difference. */
    public void report(String source, Set<DiscoveredEngine> engines) {
        synchronized (this) {
            // Copied in the source's order, so ids follow it (logs and tests read better).
            reported.put(source, java.util.Collections.unmodifiableSet(new java.util.LinkedHashSet<>(engines)));
            reconcile(clock.getAsLong());
        }
    }

    private void reconcileSafely() {
        try {
            synchronized (this) {
                reconcile(clock.getAsLong());
            }
        } catch (RuntimeException e) {
            LOG.error("discovery pass failed; trying again on the next", e);
        }
    }

    /** Applies the difference between the merged reports and the registered engines, as of {@code nowMs}. */
    synchronized void reconcile(long nowMs) {
        Map<EngineKey, DiscoveredEngine> desired = merged();
        for (DiscoveredEngine engine : desired.values()) {
            EngineSpec spec = engine.spec();
            Tracked current = tracked.get(spec.key());
            if (current != null && !current.spec.equals(spec)) {
                LOG.info("engine {} changed ({} -> {}): a new engine", spec.key(), current.spec.endpoint(),
                        spec.endpoint());
                retire(current);
                replaced++;
                current = null;
            }
            if (current == null) {
                register(engine);
                continue;
            }
            current.missingSinceMs = NOT_MISSING;
            if (!engine.instance().equals(current.instance)) {
                if (!current.instance.isEmpty() && !engine.instance().isEmpty()) {
                    LOG.info("engine {} has a new process ({}): restarting it", spec.key(), engine.instance());
                    restarts++;
                    target.restart(current.id);
                }
                current.instance = engine.instance();
            }
        }
        for (Tracked engine : List.copyOf(tracked.values())) {
            if (desired.containsKey(engine.spec.key())) {
                continue;
            }
            if (engine.missingSinceMs == NOT_MISSING) {
                engine.missingSinceMs = nowMs;
                LOG.info("engine {} is no longer discovered: removed in {} ms unless it comes back",
                        engine.spec.key(), removeGraceMs);
            }
            if (nowMs - engine.missingSinceMs >= removeGraceMs) {
                LOG.info("engine {} removed: missing for {} ms", engine.spec.key(), nowMs - engine.missingSinceMs);
                retire(engine);
            }
        }
    }

    private Map<EngineKey, DiscoveredEngine> merged() {
        Map<EngineKey, DiscoveredEngine> desired = new LinkedHashMap<>();
        for (Map.Entry<String, Set<DiscoveredEngine>> source : reported.entrySet()) {
            for (DiscoveredEngine engine : source.getValue()) {
                DiscoveredEngine earlier = desired.putIfAbsent(engine.spec().key(), engine);
                if (earlier != null && !earlier.spec().equals(engine.spec()) && warned.add(engine.spec())) {
                    LOG.warn("engine {} from {} ignored: an earlier source describes it as {}", engine.spec().key(),
                            source.getKey(), earlier.spec());
                }
            }
        }
        return desired;
    }

    private void register(DiscoveredEngine engine) {
        EngineSpec spec = engine.spec();
        int id;
        try {
            id = registry.register(spec);
        } catch (IllegalArgumentException e) {
            if (warned.add(spec)) {
                refused++;
                LOG.warn("engine {} refused: {}", spec.key(), e.getMessage());
            }
            return;
        }
        tracked.put(spec.key(), new Tracked(id, spec, engine.instance()));
        added++;
        LOG.info("engine {} id={} model={} endpoint={} replay={} topic='{}'", spec.key(), id, spec.model(),
                spec.endpoint(), spec.replayEndpoint().map(Object::toString).orElse("none"), spec.topic());
        target.add(id);
    }

    private void retire(Tracked engine) {
        tracked.remove(engine.spec.key());
        // Retired here, not on the ingest thread, so the same key can be registered again at once.
        registry.remove(engine.id);
        removed++;
        target.remove(engine.id);
    }

    /** Sizes and counters as of now. */
    public synchronized Snapshot snapshot() {
        Map<String, Integer> bySource = new LinkedHashMap<>();
        reported.forEach((source, engines) -> bySource.put(source, engines.size()));
        int missing = (int) tracked.values().stream().filter(t -> t.missingSinceMs != NOT_MISSING).count();
        return new Snapshot(bySource, tracked.size(), missing, added, removed, replaced, restarts, refused);
    }

    @Override
    public void stop(Duration budget) throws InterruptedException {
        for (EngineSource source : sources) {
            source.stop();
        }
        if (scheduler != null) {
            scheduler.shutdownNow();
            scheduler.awaitTermination(Math.max(1, budget.toMillis()), TimeUnit.MILLISECONDS);
        }
        synchronized (this) {
            for (Tracked engine : tracked.values()) {
                registry.remove(engine.id);
            }
            tracked.clear();
        }
    }
}
