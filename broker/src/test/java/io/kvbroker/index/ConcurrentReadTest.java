package io.kvbroker.index;

import static io.kvbroker.index.Events.batch;
import static io.kvbroker.index.Events.gpu;
import static io.kvbroker.index.Events.tokens;
import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.Medium;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Queries running beside the writer see each engine as of one applied batch, at or after the sequence read before
 * the query: never a batch half applied.
 *
 * <p>Each engine alternates between holding a chain of {@value #CHAIN} blocks (even sequences) and holding nothing
 * (odd), and removes its chain tail first, so a torn read shows a match of 1 to {@value #CHAIN}-1 blocks, which no
 * applied batch ever leaves. Forty engines share the chain's keys, so the key's engine sets move between their
 * sparse and bitset forms under the readers.
 */
class ConcurrentReadTest {
    private static final int G = 16;
    private static final int CHAIN = 8;
    private static final int ENGINES = 40;
    private static final int BATCHES = 60_000;

    private final BlockIndex index = new BlockIndex(id -> "m", G, PrefixScorer.Weights.DEFAULT);
    private final int[] chainTokens = tokens(100, CHAIN * G);
    private final int[] prompt = tokens(100, CHAIN * G + 1);
    private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();

    private static long hash(int engine, int block) {
        return engine * 1_000L + block + 1;
    }

    /** Blocks engine {@code e} holds after applying sequence {@code s}. */
    private static int heldAfter(long s) {
        return s < 0 || s % 2 == 1 ? 0 : CHAIN;
    }

    private void apply(int engine, long sequence) {
        long[] hashes = new long[CHAIN];
        for (int b = 0; b < CHAIN; b++) {
            hashes[b] = hash(engine, sequence % 2 == 0 ? b : CHAIN - 1 - b);
        }
        index.apply(engine, 1, sequence, sequence % 2 == 0 ? batch(gpu(hashes, null, chainTokens))
                : batch(new BlockRemoved(hashes, Medium.GPU, 0, GroupKind.FULL_ATTENTION, null, null)));
    }

    /** {@code held} blocks is what engine {@code e} held after some sequence in {@code [from, to]}. */
    private void check(String what, int e, int held, long from, long to) {
        boolean possible = heldAfter(from) == held || (to > from && (held == 0 || held == CHAIN));
        if (!possible) {
            failures.add(what + ": engine " + e + " showed " + held + " blocks between sequences " + from + " and "
                    + to);
        }
    }

    @Test
    void everyEnginesPartOfAnAnswerIsOneAppliedBatch() throws Exception {
        long[] keys = new ContentKeys(G).promptKeys("m", null, chainTokens);
        AtomicBoolean done = new AtomicBoolean();
        AtomicLong queries = new AtomicLong();
        CountDownLatch started = new CountDownLatch(2);
        List<Thread> readers = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
            int topK = r == 0 ? 0 : 5;
            Thread reader = new Thread(() -> {
                started.countDown();
                long[] before = new long[ENGINES];
                long[] after = new long[ENGINES];
                while (!done.get() && failures.size() < 10) {
                    for (int e = 0; e < ENGINES; e++) {
                        before[e] = index.appliedSequence(e);
                    }
                    int[] matched = new int[ENGINES];
                    List<PrefixScore> scores = index.score("m", null, prompt, null, null, topK, 0);
                    scores.forEach(s -> matched[s.engineId()] = s.totalBlocks());
                    int[] looked = new int[ENGINES];
                    index.lookupKeys(keys).forEach(holders -> holders.forEach(h -> looked[h.engineId()]++));
                    for (int e = 0; e < ENGINES; e++) {
                        after[e] = index.appliedSequence(e);
                    }
                    for (int e = 0; e < ENGINES; e++) {
                        if (topK == 0 || matched[e] > 0) {
                            check("score", e, matched[e], before[e], after[e]);
                        }
                        check("lookup", e, looked[e], before[e], after[e]);
                    }
                    if (topK > 0 && !scores.isEmpty()) {
                        assertThat(scores.size()).isLessThanOrEqualTo(topK);
                    }
                    queries.incrementAndGet();
                }
            }, "reader-" + r);
            readers.add(reader);
            reader.start();
        }
        started.await();
        for (int i = 0; i < BATCHES && failures.isEmpty(); i++) {
            int engine = i % ENGINES;
            apply(engine, i / ENGINES);
        }
        done.set(true);
        for (Thread reader : readers) {
            reader.join();
        }
        assertThat(failures).isEmpty();
        assertThat(queries.get()).as("queries ran beside the writer").isPositive();
    }
}
