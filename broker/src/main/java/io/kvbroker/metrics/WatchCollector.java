package io.kvbroker.metrics;

import io.kvbroker.watch.ChangeFeed;
import io.kvbroker.watch.WatchService;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;

/** Watch streams and the change feed's ring they read from ({@code kvbroker_watch_*}), read once per scrape. */
final class WatchCollector implements MultiCollector {
    private static final String P = "kvbroker_watch_";
    private final WatchService watch;
    private final ChangeFeed feed;

    WatchCollector(WatchService watch, ChangeFeed feed) {
        this.watch = watch;
        this.feed = feed;
    }

    @Override
    public MetricSnapshots collect() {
        WatchService.Counters c = watch.counters();
        Families f = new Families();
        Labels none = Labels.EMPTY;
        f.gauge(P + "open_watchers", "Watch streams open now.", none, watch.openWatchers());
        f.counter(P + "opened_watchers", "Watch streams admitted.", none, c.opened());
        f.counter(P + "dropped_watchers", "Watch streams ended because they fell behind the buffer (the client"
                + " resumes from its token, or takes a snapshot).", none, c.fellBehind());
        f.counter(P + "sent_snapshots", "Whole engine snapshots sent.", none, c.snapshots());
        f.counter(P + "sent_batches", "Engine batches sent.", none, c.batches());
        f.counter(P + "resumed_engines", "Engines resumed from the buffer or the log, or matched exactly, without a"
                + " snapshot.", none, c.resumedEngines());
        long next = feed.next();
        f.gauge(P + "buffer_entries", "Applied batches and resets held in memory for watchers (watch.bufferBatches).",
                none, next - feed.tail());
        f.gauge(P + "buffer_capacity_entries", "Entries the buffer holds at most (watch.bufferBatches rounded up to a"
                + " power of two).", none, feed.capacity());
        f.gauge(P + "next_sequence", "The broker sequence the next applied batch gets.", none, next);
        return f.build();
    }
}
