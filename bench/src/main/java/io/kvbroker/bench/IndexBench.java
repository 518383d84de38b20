package io.kvbroker.bench;

import io.kvbroker.apply.BatchApplier;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.IndexBudget;
import io.kvbroker.index.IndexStats;
import io.kvbroker.ingest.IngestSink;
import io.kvbroker.sim.Workload;
import it.unimi.dsi.fastutil.longs.Long2LongOpenHashMap;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.HdrHistogram.Histogram;

/**
 * The block index on one thread: apply rate against a floor of two bare primitive maps doing the same puts and
 * removes, Score latency for a 2,048-token prompt over 1,000 engines, and heap per residency at scale.
 * Usage: {@code IndexBench [--quick] [--out DIR]} (the memory figures want a large heap: scripts/bench gives 16 GiB).
 */
public final class IndexBench {
    private static final int G = 16;
    private static final ThreadLocal<io.kvbroker.core.ContentKeys> CHAIN_KEYS =
            ThreadLocal.withInitial(() -> new io.kvbroker.core.ContentKeys(G));

    private IndexBench() {
    }

    public static void main(String[] args) throws Exception {
        boolean quick = List.of(args).contains("--quick");
        Path out = BenchReport.outDir(args);
        StringBuilder md = new StringBuilder();
        String command = "scripts/bench index" + (quick ? " --quick" : "");
        md.append(BenchReport.writtenBy(command)).append(". One thread.\n\n");

        // Apply: a simulated fleet's decoded batches, applied to a fresh index, three rounds (the first warms up).
        List<KvEventBatch> batches = new ArrayList<>();
        List<Integer> engineOf = new ArrayList<>();
        long blockEvents = generate(quick ? 100 : 200, quick ? 300 : 1_000, batches, engineOf);
        double[] apply = new double[3];
        double[] applyAtQuota = new double[3];
        double[] floor = new double[3];
        long peakPerEngine = 0;
        long evicted = 0;
        for (int round = 0; round < 3; round++) {
            BlockIndex index = new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT);
            apply[round] = applyRate(index, batches, engineOf, blockEvents);
            peakPerEngine = index.stats().residencies() / index.stats().engines();
            // The same stream with each engine's quota at half its final working set: eviction runs all along.
            BlockIndex budgeted = new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT,
                    IndexBudget.ofQuota(Math.max(64, peakPerEngine / 2)));
            applyAtQuota[round] = applyRate(budgeted, batches, engineOf, blockEvents);
            evicted = budgeted.stats().counts().evictedBlocks;
            floor[round] = floorRate(batches, engineOf, blockEvents);
        }
        md.append("### Apply\n\nDecoded batches of a simulated fleet (").append(batches.size()).append(" batches, ")
                .append(String.format(Locale.ROOT, "%,d", blockEvents)).append(" block events: stores with tokens,"
                + " LRU evictions, offload stores,\nLoRA, hybrid groups) applied to a fresh index; best of rounds 2-3. "
                + "Floor: the same stores and removals as puts and\nremoves on two bare fastutil long maps (engine"
                + " hash to key, key to holder), without computing keys.\n\n");
        double applyBest = Math.max(apply[1], apply[2]);
        double floorBest = Math.max(floor[1], floor[2]);
        md.append("| figure | value | floor | ratio | target |\n|---|---|---|---|---|\n");
        md.append(String.format(Locale.ROOT, "| apply, block events/s | %,.0f | %,.0f | %.2f | >= 2,000,000 |%n",
                applyBest, floorBest, applyBest / floorBest));
        double atQuotaBest = Math.max(applyAtQuota[1], applyAtQuota[2]);
        md.append(String.format(Locale.ROOT, "| apply at quota (%,d blocks an engine, half its working set; %,d"
                + " evicted), block events/s | %,.0f | %,.0f | %.2f | |%n", Math.max(64, peakPerEngine / 2), evicted,
                atQuotaBest, floorBest, atQuotaBest / floorBest));

        // Score: 1,000 engines holding chains of shared system prompts and their own conversations.
        int engines = 1_000;
        BlockIndex index = new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT);
        int[] query = scoreFleet(index, 0, engines, quick ? 10 : 40);
        Histogram latency = new Histogram(3_600_000_000L, 3);
        int holders = index.score("m", null, query, null, null, 0, 0).size();
        // Enough warm-up calls for the JIT to compile the whole Score path before measuring.
        for (int i = 0; i < (quick ? 30_000 : 150_000); i++) {
            long start = System.nanoTime();
            index.score("m", null, query, null, null, 32, 0);
            if (i >= (quick ? 15_000 : 50_000)) {
                latency.recordValue((System.nanoTime() - start) / 1_000);
            }
        }
        md.append(String.format(Locale.ROOT, "%n### Score%n%nA 2,049-token prompt (128 chunks; its first 64 chunks a"
                + " shared system prompt) over %d engines holding\n%,d residencies, top_k 32; %d engines match."
                + " Keys computed from the tokens on every call. Latency in µs over\n%,d calls after warm-up.%n%n",
                engines, index.stats().residencies(), holders, latency.getTotalCount()));
        List<String> json = new ArrayList<>();
        json.add(String.format(Locale.ROOT, "    {\"figure\": \"apply\", \"blockEventsPerSec\": %.0f, \"floor\": %.0f}",
                applyBest, floorBest));
        json.add(String.format(Locale.ROOT, "    {\"figure\": \"applyAtQuota\", \"blockEventsPerSec\": %.0f,"
                + " \"floor\": %.0f}", atQuotaBest, floorBest));
        json.add(String.format(Locale.ROOT, "    {\"figure\": \"scoreAlone\", \"p50us\": %d, \"p99us\": %d}",
                latency.getValueAtPercentile(50), latency.getValueAtPercentile(99)));
        md.append("| reads | p50 | p99 | p99.9 | max | target p99 |\n|---|---|---|---|---|---|\n");
        md.append(String.format(Locale.ROOT, "| alone | %d | %d | %d | %d | <= 20 |%n",
                latency.getValueAtPercentile(50), latency.getValueAtPercentile(99),
                latency.getValueAtPercentile(99.9), latency.getMaxValue()));

        // The same Score while a writer thread applies the fleet's batches to 200 of the engines without pause.
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicLong applied = new java.util.concurrent.atomic.AtomicLong();
        BlockIndex shared = index;
        Thread writer = new Thread(() -> {
            long sequence = 1_000;
            while (!stop.get()) {
                for (int i = 0; i < batches.size() && !stop.get(); i++) {
                    shared.apply(engineOf.get(i), 1, sequence++, batches.get(i));
                    applied.incrementAndGet();
                }
            }
        }, "bench-writer");
        writer.start();
        Histogram busy = new Histogram(3_600_000_000L, 3);
        long busyStart = System.nanoTime();
        for (int i = 0; i < (quick ? 15_000 : 100_000); i++) {
            long start = System.nanoTime();
            index.score("m", null, query, null, null, 32, 0);
            busy.recordValue((System.nanoTime() - start) / 1_000);
        }
        double writerRate = applied.get() / ((System.nanoTime() - busyStart) / 1e9);
        stop.set(true);
        writer.join();
        md.append(String.format(Locale.ROOT, "| beside a writer applying %,.0f batches/s | %d | %d | %d | %d | |%n",
                writerRate, busy.getValueAtPercentile(50), busy.getValueAtPercentile(99),
                busy.getValueAtPercentile(99.9), busy.getMaxValue()));
        json.add(String.format(Locale.ROOT, "    {\"figure\": \"scoreBesideWriter\", \"writerBatchesPerSec\": %.0f,"
                + " \"p50us\": %d, \"p99us\": %d}", writerRate, busy.getValueAtPercentile(50),
                busy.getValueAtPercentile(99)));
        md.append("\nReads take no lock; a query that a write to an engine overlapped reads that engine again.\n");

        // Memory per residency.
        md.append("\n### Memory\n\nHeap after a full GC, with the index built from distinct chains over 1,000 "
                + "engines, divided by residencies;\nthe index's own estimate beside it.\n\n");
        md.append("| residencies | heap bytes per residency | estimated bytes per residency | target |\n|---|---|---|---|\n");
        for (long target : quick ? new long[] {1_000_000} : new long[] {1_000_000, 10_000_000, 50_000_000}) {
            index = null;
            long before = usedHeapAfterGc();
            BlockIndex big = new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT);
            fill(BatchApplier.indexOnly(big), 1_000, target);
            long after = usedHeapAfterGc();
            IndexStats stats = big.stats();
            double perResidency = (after - before) / (double) stats.residencies();
            md.append(String.format(Locale.ROOT, "| %,d | %.1f | %.1f | <= 64 (aim 40) |%n", stats.residencies(),
                    perResidency, stats.memoryBytes() / (double) stats.residencies()));
            json.add(String.format(Locale.ROOT, "    {\"figure\": \"memory\", \"residencies\": %d,"
                    + " \"heapBytesPerResidency\": %.1f}", stats.residencies(), perResidency));
            big = null;
        }
        System.out.print(md);
        BenchReport.writeSection(out, "Index", md.toString());
        BenchReport.writeJson(out, "index", command, json);
    }

    private static double applyRate(BlockIndex index, List<KvEventBatch> batches, List<Integer> engineOf,
            long blockEvents) {
        long start = System.nanoTime();
        for (int i = 0; i < batches.size(); i++) {
            index.apply(engineOf.get(i), 1, i, batches.get(i));
        }
        return blockEvents / ((System.nanoTime() - start) / 1e9);
    }

    /**
     * Fills {@code index} with {@code engines} engines (ids from {@code firstEngine}) of model "m", each holding
     * {@code conversations} 128-block chains that start with one of 16 shared system prompts (8 to 63 chunks of it);
     * returns a 2,049-token query: the first system prompt's 64 chunks, then 64 chunks of its own.
     */
    static int[] scoreFleet(BlockIndex index, int firstEngine, int engines, int conversations) {
        int[][] systems = new int[16][];
        SplittableRandom random = new SplittableRandom(5);
        for (int s = 0; s < systems.length; s++) {
            systems[s] = tokens(random, 64 * G);
        }
        for (int e = firstEngine; e < firstEngine + engines; e++) {
            for (int c = 0; c < conversations; c++) {
                int[] system = systems[random.nextInt(systems.length)];
                int[] prompt = new int[128 * G];
                int shared = G * (8 + random.nextInt(56));
                System.arraycopy(system, 0, prompt, 0, shared);
                System.arraycopy(tokens(random, prompt.length - shared), 0, prompt, shared, prompt.length - shared);
                index.apply(e, 1, c, new KvEventBatch(0, 0, List.of(chain(e, c, prompt)), 0, 0));
            }
        }
        int[] query = new int[128 * G + 1];
        System.arraycopy(systems[0], 0, query, 0, systems[0].length);
        System.arraycopy(tokens(random, query.length - systems[0].length), 0, query, systems[0].length,
                query.length - systems[0].length);
        return query;
    }

    /** Runs a fleet of workloads and keeps their decoded batches; returns the number of block events. */
    static long generate(int engines, int steps, List<KvEventBatch> batches, List<Integer> engineOf) {
        List<Workload> fleet = new ArrayList<>();
        for (int e = 0; e < engines; e++) {
            fleet.add(new Workload(new SplittableRandom(e), 7, new Workload.Shape(500, 1_000, 8, 2, e % 5 == 4, 8,
                    0.0005, 0.02)));
        }
        long events = 0;
        for (int s = 0; s < steps; s++) {
            for (int e = 0; e < engines; e++) {
                KvEventBatch batch = new KvEventBatch(s, 0, fleet.get(e).step(), 0, 0);
                batches.add(batch);
                engineOf.add(e);
                events += batch.blockEventCount();
            }
        }
        return events;
    }

    /** The same stores and removals as bare map operations: engine hash to key, and key to holder. */
    private static double floorRate(List<KvEventBatch> batches, List<Integer> engineOf, long blockEvents) {
        Long2LongOpenHashMap byHash = new Long2LongOpenHashMap();
        Long2LongOpenHashMap byKey = new Long2LongOpenHashMap();
        long start = System.nanoTime();
        for (int i = 0; i < batches.size(); i++) {
            long engine = (long) engineOf.get(i) << 48;
            for (KvEvent event : batches.get(i).events()) {
                if (event instanceof BlockStored s) {
                    for (long h : s.blockHashes()) {
                        long key = h * 0x9E3779B97F4A7C15L;
                        byHash.put(h ^ engine, key);
                        byKey.put(key, engine);
                    }
                } else if (event instanceof BlockRemoved r) {
                    for (long h : r.blockHashes()) {
                        long key = byHash.remove(h ^ engine);
                        byKey.remove(key);
                    }
                }
            }
        }
        return blockEvents / ((System.nanoTime() - start) / 1e9);
    }

    /**
     * Distinct 8-block chains, round-robin over engines, until {@code target} residencies; each engine's batches
     * numbered from 0.
     */
    static void fill(IngestSink sink, int engines, long target) {
        long[] sequence = new long[engines];
        SplittableRandom random = new SplittableRandom(9);
        int[] tokens = new int[8 * G];
        long hash = 1;
        for (long held = 0; held < target; held += 8) {
            for (int t = 0; t < tokens.length; t++) {
                tokens[t] = random.nextInt(150_000);
            }
            long[] hashes = new long[8];
            for (int b = 0; b < 8; b++) {
                hashes[b] = hash++;
            }
            int engine = (int) ((held / 8) % engines);
            sink.onBatch(engine, 1, sequence[engine]++, new KvEventBatch(0, 0, List.of(
                    new BlockStored(hashes, false, 0, tokens.clone(), G, -1, Medium.GPU, null, null, 0,
                            GroupKind.FULL_ATTENTION, -1, null, null, null)), 0, 0));
        }
    }

    /** A conversation's chain as the engine stores it: equal content has equal hashes within one engine. */
    static BlockStored chain(int engine, int conversation, int[] prompt) {
        long[] hashes = new long[prompt.length / G];
        long[] keys = CHAIN_KEYS.get().promptKeys("m", null, prompt);
        for (int b = 0; b < hashes.length; b++) {
            hashes[b] = (keys[b] ^ engine * 0x9E3779B97F4A7C15L) | 1;
        }
        return new BlockStored(hashes, false, 0, prompt, G, -1, Medium.GPU, null, null, 0, GroupKind.FULL_ATTENTION,
                -1, null, null, null);
    }

    static int[] tokens(SplittableRandom random, int count) {
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) {
            tokens[i] = random.nextInt(150_000);
        }
        return tokens;
    }

    private static long usedHeapAfterGc() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(200);
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
