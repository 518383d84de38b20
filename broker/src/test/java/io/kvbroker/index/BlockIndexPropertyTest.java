package io.kvbroker.index;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Seeded random engine histories (stores, removals, clears, restarts, LoRA, several media, offload stores, hybrid
 * groups, duplicates, orphans, two block sizes, two models) applied to the index and to a plain reference model;
 * every Score and Lookup must agree.
 */
class BlockIndexPropertyTest {
    private static final int G = 16;
    /** Engines per campaign: few (every path of one engine often), or many (keys shared past the bitset size). */
    private int engines = 6;
    private static final Medium[] MEDIA = {Medium.GPU, Medium.GPU, Medium.CPU, Medium.STORAGE, Medium.UNSPECIFIED};

    /** Engine 4 serves another model; engine 5 uses 32-token blocks. */
    private static String modelOf(int engine) {
        return engine == 4 ? "m2" : "m";
    }

    private static int blockSize(int engine) {
        return engine == 5 ? 2 * G : G;
    }

    private record Prompt(String lora, int[] tokens) {
    }

    @Test
    void indexAgreesWithTheReferenceModel() {
        for (long seed = 1; seed <= 6; seed++) {
            run(seed, 3_000);
        }
    }

    @Test
    @Tag("slow")
    void indexAgreesWithTheReferenceModelWhenManyEnginesShareKeys() {
        engines = 90;
        for (long seed = 11; seed <= 12; seed++) {
            run(seed, 12_000);
        }
    }

    @Test
    void underAQuotaEvictionKeepsChainsWholeNeverInventsAHitAndIsDeterministic() {
        for (long seed = 21; seed <= 24; seed++) {
            run(seed, 3_000, IndexBudget.ofQuota(10 + (int) seed % 3 * 4));
        }
    }

    private void run(long seed, int steps) {
        run(seed, steps, IndexBudget.NONE);
    }

    /**
     * Without a budget the index must equal the reference; under one, its answers must be within the reference's,
     * each engine within its quota, no indexed block below an evicted one, and a second index fed the same stream
     * must answer the same.
     */
    private void run(long seed, int steps, IndexBudget budget) {
        SplittableRandom random = new SplittableRandom(seed);
        BlockIndex index = new BlockIndex(BlockIndexPropertyTest::modelOf, G, PrefixScorer.Weights.DEFAULT, budget);
        BlockIndex twin = new BlockIndex(BlockIndexPropertyTest::modelOf, G, PrefixScorer.Weights.DEFAULT, budget);
        // What a journal would keep: each engine's last checkpoint and the resolved batches applied after it.
        Map<Integer, byte[]> checkpoints = new java.util.HashMap<>();
        List<Object[]> logged = new ArrayList<>();
        ReferenceIndex reference = new ReferenceIndex(G, BlockIndexPropertyTest::modelOf);
        ContentKeys keys = new ContentKeys(G);
        List<Prompt> prompts = prompts(random);
        long[] incarnationSeed = new long[engines];
        for (int e = 0; e < engines; e++) {
            incarnationSeed[e] = random.nextLong();
        }
        for (int step = 0; step < steps; step++) {
            int engine = random.nextInt(engines);
            List<KvEvent> events = new ArrayList<>();
            int op = random.nextInt(100);
            Prompt prompt = prompts.get(random.nextInt(prompts.size()));
            int size = blockSize(engine);
            int blocks = prompt.tokens().length / size;
            long[] chain = chainHashes(keys, engine, incarnationSeed[engine], prompt, size);
            if (op < 50) {
                // Store a run of the prompt's blocks; a run not starting at 0 may have a parent the engine lacks.
                int from = random.nextInt(100) < 60 ? 0 : random.nextInt(blocks);
                int count = 1 + random.nextInt(blocks - from);
                long[] hashes = java.util.Arrays.copyOfRange(chain, from, from + count);
                int[] tokens = java.util.Arrays.copyOfRange(prompt.tokens(), from * size, (from + count) * size);
                List<Object> extra = null;
                if (prompt.lora() != null) {
                    extra = new ArrayList<>();
                    for (int b = 0; b < count; b++) {
                        extra.add(List.of(prompt.lora()));
                    }
                }
                GroupKind kind = random.nextInt(10) == 0 ? GroupKind.SLIDING_WINDOW : GroupKind.FULL_ATTENTION;
                events.add(new BlockStored(hashes, from > 0, from > 0 ? chain[from - 1] : 0, tokens, size,
                        prompt.lora() == null ? -1 : 7, MEDIA[random.nextInt(2)], prompt.lora(), extra,
                        kind == GroupKind.SLIDING_WINDOW ? 1 : 0, kind, -1, null, null, null));
            } else if (op < 75) {
                long hash = chain[random.nextInt(blocks)];
                GroupKind kind = random.nextInt(8) == 0 ? GroupKind.UNKNOWN : GroupKind.FULL_ATTENTION;
                events.add(new BlockRemoved(new long[] {hash}, MEDIA[random.nextInt(MEDIA.length)], 0, kind, null,
                        null));
            } else if (op < 90) {
                // The offload tier announces a block without tokens; unresolvable if the engine does not hold it.
                long hash = chain[random.nextInt(blocks)];
                events.add(new BlockStored(new long[] {hash}, false, 0, new int[0], 0, -1,
                        random.nextBoolean() ? Medium.CPU : Medium.STORAGE, null, null, 0, GroupKind.UNSPECIFIED, -1,
                        "local", null, null));
            } else if (op < 94) {
                events.add(random.nextBoolean() ? AllBlocksCleared.ALL : new AllBlocksCleared(Medium.GPU));
            } else if (op < 96) {
                // A restart: state forgotten, and the new process hashes with a new seed.
                index.reset(engine, 2);
                twin.reset(engine, 2);
                logged.add(new Object[] {engine, -1L, new ResolvedBatch(List.of(new ResolvedBatch.Clear(
                        io.kvbroker.core.Media.ALL)))});
                reference.reset(engine);
                incarnationSeed[engine] = random.nextLong();
                continue;
            } else {
                // A repeat of a whole chain from its root, re-rooting any orphans of it.
                events.add(new BlockStored(chain, false, 0, java.util.Arrays.copyOf(prompt.tokens(), blocks * size),
                        size, -1, Medium.GPU, prompt.lora(), null, 0, GroupKind.FULL_ATTENTION, -1, null, null,
                        null));
            }
            ResolvedBatch resolved = index.apply(engine, 1, step, new KvEventBatch(0, 0, events, 0, 0), true);
            logged.add(new Object[] {engine, (long) step, resolved});
            twin.apply(engine, 1, step, new KvEventBatch(0, 0, events, 0, 0));
            if (step % 700 == 350) {
                for (int e = 0; e < engines; e++) {
                    checkpoints.put(e, index.checkpoint(e));
                }
                logged.clear();
            }
            for (KvEvent event : events) {
                reference.apply(engine, event);
            }
            if (budget.limited()) {
                checkBudgeted(seed, step, budget, index, twin, reference, prompts);
            } else if (step % (engines > 10 ? 100 : 25) == 0) {
                compare(seed, step, index, reference, prompts, keys);
            }
        }
        BlockIndex recovered = new BlockIndex(BlockIndexPropertyTest::modelOf, G, PrefixScorer.Weights.DEFAULT, budget);
        checkpoints.forEach((e, checkpoint) -> {
            if (checkpoint != null) {
                recovered.restore(e, checkpoint);
            }
        });
        for (Object[] entry : logged) {
            long sequence = (Long) entry[1];
            recovered.applyResolved((Integer) entry[0], sequence < 0 ? 2 : 1, sequence, (ResolvedBatch) entry[2]);
        }
        checkRecovered(seed, index, recovered, prompts, keys);
        if (budget.limited()) {
            assertThat(index.stats().counts().evictedBlocks).as("the campaign evicts").isPositive();
            assertThat(index.stats().counts().forgottenBlocks).as("and forgets evicted entries").isPositive();
            return;
        }
        compare(seed, -1, index, reference, prompts, keys);
        if (engines > 10) {
            int most = 0;
            for (Prompt prompt : prompts) {
                for (List<BlockIndex.Holder> holders : index.lookupKeys(keys.promptKeys("m", prompt.lora(),
                        prompt.tokens()))) {
                    most = Math.max(most, holders.size());
                }
            }
            // Past 32 holders a key's engine set is a bitset: the campaign must have reached that layout.
            assertThat(most).as("holders of the most shared key").isGreaterThan(32);
        }
        assertThat(index.stats().counts().orphanBlocks).as("the campaign makes orphans").isPositive();
        assertThat(index.stats().counts().rerootedBlocks).as("and re-roots some").isPositive();
    }

    private static void compare(long seed, int step, BlockIndex index, ReferenceIndex reference, List<Prompt> prompts,
            ContentKeys keys) {
        for (Prompt prompt : prompts) {
            for (String model : List.of("m", "m2")) {
                // Best score first, then lower engine id: the order Score promises.
                List<ReferenceIndex.Score> expected = new ArrayList<>(reference.score(model, prompt.lora(),
                        prompt.tokens()));
                expected.sort(Comparator.comparingDouble(ReferenceIndex.Score::score).reversed()
                        .thenComparingInt(ReferenceIndex.Score::engineId));
                assertThat(scores(index, model, prompt, 0)).as("seed %d step %d score %s", seed, step, model)
                        .isEqualTo(expected);
                assertThat(scores(index, model, prompt, 3)).as("seed %d step %d top 3 %s", seed, step, model)
                        .isEqualTo(expected.subList(0, Math.min(3, expected.size())));
                long[] chain = keys.promptKeys(model, prompt.lora(), prompt.tokens());
                List<List<BlockIndex.Holder>> lookup = index.lookupKeys(chain);
                for (int i = 0; i < chain.length; i++) {
                    List<List<Integer>> got = new ArrayList<>();
                    lookup.get(i).forEach(h -> got.add(List.of(h.engineId(), h.media())));
                    got.sort((a, b) -> a.get(0) != b.get(0).intValue() ? a.get(0) - b.get(0) : a.get(1) - b.get(1));
                    assertThat(got).as("seed %d step %d lookup", seed, step).isEqualTo(reference.holdersOfKey(chain[i]));
                }
            }
        }
        // Lookup by engine hash: every hash the reference holds (orphans included), on every engine holding it.
        java.util.Set<Long> hashes = new java.util.TreeSet<>();
        reference.engines.values().forEach(held -> hashes.addAll(held.keySet()));
        long[] probe = hashes.stream().mapToLong(Long::longValue).limit(200).toArray();
        List<List<BlockIndex.Holder>> byHash = index.lookupHashes(probe);
        for (int i = 0; i < probe.length; i++) {
            List<List<Integer>> expected = new ArrayList<>();
            for (Map.Entry<Integer, Map<Long, ReferenceIndex.Entry>> engine : reference.engines.entrySet()) {
                ReferenceIndex.Entry entry = engine.getValue().get(probe[i]);
                if (entry != null) {
                    expected.add(List.of(engine.getKey(), entry.media()));
                }
            }
            List<List<Integer>> got = new ArrayList<>();
            byHash.get(i).forEach(h -> got.add(List.of(h.engineId(), h.media())));
            assertThat(got).as("seed %d step %d lookup of hash %d", seed, step, probe[i]).isEqualTo(expected);
        }
        long residencies = 0;
        for (Map<Long, ReferenceIndex.Entry> held : reference.engines.values()) {
            residencies += held.size();
        }
        assertThat(index.stats().residencies()).as("seed %d step %d residencies", seed, step).isEqualTo(residencies);
    }

    /** An index rebuilt from checkpoints and the resolved batches after them answers as the original. */
    private void checkRecovered(long seed, BlockIndex index, BlockIndex recovered, List<Prompt> prompts,
            ContentKeys keys) {
        for (int e = 0; e < engines; e++) {
            assertThat(recovered.engineSummary(e)).as("seed %d recovered engine %d", seed, e)
                    .isEqualTo(index.engineSummary(e));
        }
        for (Prompt prompt : prompts) {
            for (String model : List.of("m", "m2")) {
                assertThat(scores(recovered, model, prompt, 0)).as("seed %d recovered score", seed)
                        .isEqualTo(scores(index, model, prompt, 0));
                long[] chain = keys.promptKeys(model, prompt.lora(), prompt.tokens());
                assertThat(recovered.lookupKeys(chain)).as("seed %d recovered lookup", seed)
                        .isEqualTo(index.lookupKeys(chain));
            }
        }
        assertThat(recovered.stats().residencies()).isEqualTo(index.stats().residencies());
        assertThat(recovered.stats().keys()).isEqualTo(index.stats().keys());
    }

    private void checkBudgeted(long seed, int step, IndexBudget budget, BlockIndex index, BlockIndex twin,
            ReferenceIndex reference, List<Prompt> prompts) {
        for (int e = 0; e < engines; e++) {
            EngineBlocks blocks = index.engineBlocks(e);
            if (blocks == null) {
                continue;
            }
            assertThat((long) blocks.indexedCount()).as("seed %d step %d engine %d within quota", seed, step, e)
                    .isLessThanOrEqualTo(budget.quotaBlocks());
            for (int id = 0; id < blocks.idBound(); id++) {
                if (blocks.used(id) && blocks.indexed(id) && blocks.parent(id) != EngineBlocks.NONE) {
                    assertThat(blocks.evicted(blocks.parent(id)))
                            .as("seed %d step %d engine %d: an indexed block below an evicted one", seed, step, e)
                            .isFalse();
                }
            }
            assertThat(index.engineSummary(e)).as("seed %d step %d twin summary", seed, step)
                    .isEqualTo(twin.engineSummary(e));
        }
        Prompt prompt = prompts.get(step % prompts.size());
        String model = step % 2 == 0 ? "m" : "m2";
        List<ReferenceIndex.Score> got = scores(index, model, prompt, 0);
        assertThat(scores(twin, model, prompt, 0)).as("seed %d step %d twin score", seed, step).isEqualTo(got);
        for (ReferenceIndex.Score score : got) {
            ReferenceIndex.Score truth = reference.score(model, prompt.lora(), prompt.tokens()).stream()
                    .filter(r -> r.engineId() == score.engineId()).findFirst().orElse(null);
            assertThat(truth).as("seed %d step %d: engine %d scored, holding nothing", seed, step, score.engineId())
                    .isNotNull();
            assertThat(score.gpuBlocks() + score.offloadBlocks()).as("seed %d step %d engine %d match", seed, step,
                    score.engineId()).isLessThanOrEqualTo(truth.gpuBlocks() + truth.offloadBlocks());
        }
    }

    private static List<ReferenceIndex.Score> scores(BlockIndex index, String model, Prompt prompt, int topK) {
        List<ReferenceIndex.Score> scores = new ArrayList<>();
        for (PrefixScore s : index.score(model, prompt.lora(), prompt.tokens(), null, null, topK, 0)) {
            scores.add(new ReferenceIndex.Score(s.engineId(), s.gpuBlocks(), s.offloadBlocks(), s.score()));
        }
        return scores;
    }

    /** Prompts sharing system prefixes, some under an adapter; each 6 chunks plus one token. */
    private static List<Prompt> prompts(SplittableRandom random) {
        int[][] systems = {tokens(random, 2 * G), tokens(random, 4 * G)};
        List<Prompt> prompts = new ArrayList<>();
        for (int p = 0; p < 8; p++) {
            int[] system = systems[p % 2];
            int[] tokens = java.util.Arrays.copyOf(system, 6 * G + 1);
            int[] tail = tokens(random, tokens.length - system.length);
            System.arraycopy(tail, 0, tokens, system.length, tail.length);
            prompts.add(new Prompt(p % 4 == 3 ? "adapter" : null, tokens));
        }
        return prompts;
    }

    private static int[] tokens(SplittableRandom random, int count) {
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) {
            tokens[i] = random.nextInt(1000);
        }
        return tokens;
    }

    /** The engine's hashes for a prompt's blocks: a function of its content and the incarnation's seed. */
    private static long[] chainHashes(ContentKeys keys, int engine, long seed, Prompt prompt, int size) {
        int blocks = prompt.tokens().length / size;
        long[] hashes = new long[blocks];
        long parent = keys.root(modelOf(engine), prompt.lora());
        for (int b = 0; b < blocks; b++) {
            parent = keys.block(parent, prompt.tokens(), b * size, size / G, null);
            hashes[b] = (parent ^ seed) * 0x9E3779B97F4A7C15L | 1;
        }
        return hashes;
    }
}
