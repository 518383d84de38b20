package io.kvbroker.metrics;

import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.IndexStats;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;

/** The block index's size and the writer's counters ({@code kvbroker_index_*}), read once per scrape. */
final class IndexCollector implements MultiCollector {
    private static final String P = "kvbroker_index_";
    private final BlockIndex index;

    IndexCollector(BlockIndex index) {
        this.index = index;
    }

    @Override
    public MetricSnapshots collect() {
        IndexStats stats = index.stats();
        IndexStats.Counts counts = stats.counts();
        Families f = new Families();
        Labels none = Labels.EMPTY;
        f.gauge(P + "engines", "Engines with state in the index.", none, stats.engines());
        f.gauge(P + "residencies", "Blocks held, summed over engines.", none, stats.residencies());
        f.gauge(P + "keys", "Distinct content keys with at least one holder.", none, stats.keys());
        f.gauge(P + "memory_bytes", "Estimated heap held by the index structures.", none, stats.memoryBytes());
        f.counter(P + "stored_blocks", "Blocks stored by engines' events.", none, counts.storedBlocks);
        f.counter(P + "removed_blocks", "Blocks removed by engines' events.", none, counts.removedBlocks);
        f.counter(P + "orphan_blocks", "Tokenless stores (offload) of hashes the engine never stored on GPU.", none,
                counts.orphanBlocks);
        f.counter(P + "unkeyable_blocks", "Stored blocks whose content key could not be computed.", none,
                counts.unkeyableBlocks);
        f.counter(P + "other_group_blocks", "Stores of non-full-attention groups (kept out of the prefix index).",
                none, counts.skippedOtherGroups);
        f.counter(P + "unknown_removals", "Removals of hashes the index did not hold.", none, counts.unknownRemovals);
        f.counter(P + "clears", "AllBlocksCleared events applied.", none, counts.clears);
        return f.build();
    }
}
