package io.kvbroker.metrics;

import io.kvbroker.discovery.EngineDiscovery;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import java.util.Map;

/** What discovery found and did ({@code kvbroker_discovery_*}), read once per scrape. */
final class DiscoveryCollector implements MultiCollector {
    private static final String P = "kvbroker_discovery_";
    private final EngineDiscovery discovery;

    DiscoveryCollector(EngineDiscovery discovery) {
        this.discovery = discovery;
    }

    @Override
    public MetricSnapshots collect() {
        EngineDiscovery.Snapshot s = discovery.snapshot();
        Families f = new Families();
        for (Map.Entry<String, Integer> source : s.reportedBySource().entrySet()) {
            f.gauge(P + "reported_engines", "Engines each source reports now.", Labels.of("source", source.getKey()),
                    source.getValue());
        }
        Labels none = Labels.EMPTY;
        f.gauge(P + "engines", "Engines registered by discovery.", none, s.registered());
        f.gauge(P + "missing_engines", "Registered engines no source reports, waiting out the grace period.", none,
                s.missing());
        f.counter(P + "added_engines", "Engines registered.", none, s.added());
        f.counter(P + "removed_engines", "Engines retired (gone past the grace period, or replaced).", none,
                s.removed());
        f.counter(P + "replaced_engines", "Engines whose address changed under the same name (a new engine).", none,
                s.replaced());
        f.counter(P + "restart_signals", "Engines restarted because their process instance changed.", none,
                s.restarts());
        f.counter(P + "refused_engines", "Engines the registry refused (a topic or key clash).", none, s.refused());
        return f.build();
    }
}
