package io.kvbroker.metrics;

import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Collects one scrape's data points by metric family, then builds the snapshots: the collectors read kvbroker's own
 * counters once per scrape and say what each value is, and this class does the Prometheus bookkeeping.
 *
 * <p>Design note: counter names are given without {@code _total}; the exposition adds it, as the client requires.
 */
final class Families {
    private final Map<String, CounterSnapshot.Builder> counters = new LinkedHashMap<>();
    private final Map<String, GaugeSnapshot.Builder> gauges = new LinkedHashMap<>();

    void counter(String name, String help, Labels labels, double value) {
        counters.computeIfAbsent(name, n -> CounterSnapshot.builder().name(n).help(help))
                .dataPoint(CounterDataPointSnapshot.builder().labels(labels).value(value).build());
    }

    void gauge(String name, String help, Labels labels, double value) {
        gauges.computeIfAbsent(name, n -> GaugeSnapshot.builder().name(n).help(help))
                .dataPoint(GaugeDataPointSnapshot.builder().labels(labels).value(value).build());
    }

    MetricSnapshots build() {
        MetricSnapshots.Builder all = MetricSnapshots.builder();
        for (CounterSnapshot.Builder family : counters.values()) {
            all.metricSnapshot(family.build());
        }
        for (GaugeSnapshot.Builder family : gauges.values()) {
            all.metricSnapshot(family.build());
        }
        return all.build();
    }
}
