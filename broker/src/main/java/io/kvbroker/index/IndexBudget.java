package io.kvbroker.index;

/**
 * How many blocks each engine may keep indexed, from the configured byte budget.
 *
 * <p>Design note: each engine's quota is a fixed share of the budget ({@code budgetBytes / shares}), not the budget
 * divided by however many engines exist at the moment: evictions then depend on nothing but the engine's own stream,
 * so replicas agree, and an engine joining the fleet does not make every other engine evict. {@link #BYTES_PER_BLOCK}
 * is the accounting cost of an indexed block, above the measured heap per residency (BENCHMARKS.md), so a fleet
 * within its quotas stays within the budget with the evicted entries kept beside it.
 *
 * <p>The budget is not all the heap the index takes, though: measured in a daemon at {@code -Xmx64m}
 * ({@code HeapLimitProcessTest}), the index's own estimate reached 14.4 MiB under an 8 MiB budget and 25.7 MiB under
 * 16 MiB (the evicted entries kept beside each quota and the tables' power-of-two headroom), and rebuilding the key
 * table holds its old and new arrays at once. A 16 MiB budget still ran that heap out of memory, an 8 MiB one did
 * not; hence {@link #maxBudgetMb}, which start-up holds the budget to.
 *
 * @param quotaBlocks indexed blocks an engine may keep ({@link Long#MAX_VALUE}: no budget)
 * @param lowWater where an eviction round stops, 1/16 below the quota, so rounds are not run batch after batch
 * @param evictedCap evicted entries kept per engine (for later events to resolve) before the oldest are forgotten
 */
public record IndexBudget(long quotaBlocks, long lowWater, long evictedCap) {
    public static final int BYTES_PER_BLOCK = 64;
    /** The smallest quota a budget may give: below it, eviction would churn through every conversation. */
    public static final long MIN_QUOTA_BLOCKS = 1024;
    public static final IndexBudget NONE = new IndexBudget(Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE);
    /** Heap left to the rest of the daemon (ingest, Watch's ring, gRPC) before a budget is weighed against the heap. */
    public static final long HEAP_RESERVE_MB = 32;
    /** Heap a budget may come to at its peak, as a multiple of the budget (see the class's note). */
    public static final long HEAP_PER_BUDGET = 3;

    /** The largest budget a heap of {@code maxHeapBytes} holds: a third of what is left after the reserve. */
    public static long maxBudgetMb(long maxHeapBytes) {
        return Math.max(0, (maxHeapBytes / (1024 * 1024) - HEAP_RESERVE_MB) / HEAP_PER_BUDGET);
    }

    /** A budget of {@code budgetMb} split in {@code shares} equal quotas; 0 MB: no budget. */
    public static IndexBudget of(long budgetMb, int shares) {
        if (budgetMb == 0) {
            return NONE;
        }
        return ofQuota(budgetMb * 1024 * 1024 / shares / BYTES_PER_BLOCK);
    }

    /** A quota of {@code quotaBlocks} per engine. */
    public static IndexBudget ofQuota(long quotaBlocks) {
        return new IndexBudget(quotaBlocks, quotaBlocks - quotaBlocks / 16, Math.max(1, quotaBlocks / 2));
    }

    public boolean limited() {
        return quotaBlocks != Long.MAX_VALUE;
    }
}
