package io.kvbroker.metrics;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.IndexStats;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;

/**
 * The block index's size, the writer's counters and the memory budget's evictions ({@code kvbroker_index_*}), read
 * once per scrape.
 */
final class IndexCollector implements MultiCollector {
    private static final String P = "kvbroker_index_";
    private final BlockIndex index;
    private final EngineRegistry engines;

    IndexCollector(BlockIndex index, EngineRegistry engines) {
        this.index = index;
        this.engines = engines;
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
        f.counter(P + "evicted_blocks", "Blocks dropped from the index for their engine's quota (index.budgetMb).",
                none, counts.evictedBlocks);
        f.counter(P + "restored_blocks", "Evicted blocks back in the index (announced again, or a prefix of a block"
                + " stored since).", none, counts.restoredBlocks);
        f.counter(P + "forgotten_blocks", "Evicted entries forgotten altogether, beyond the number kept per engine.",
                none, counts.forgottenBlocks);
        int truncated = 0;
        for (EngineRegistry.Entry engine : engines.live()) {
            if (index.truncated(engine.id())) {
                truncated++;
            }
        }
        f.gauge(P + "truncated_engines", "Engines the index holds less of than they cache, for their quota (Score"
                + " may miss their evicted blocks).", none, truncated);
        if (index.budget().limited()) {
            f.gauge(P + "quota_blocks", "Indexed blocks each engine may keep (index.budgetMb / index.budgetShares).",
                    none, index.budget().quotaBlocks());
        }
        return f.build();
    }
}
