package io.kvbroker.client;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.proto.v1.WatchResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import static io.kvbroker.client.WatchMessages.added;
import static io.kvbroker.client.WatchMessages.batch;
import static io.kvbroker.client.WatchMessages.changes;
import static io.kvbroker.client.WatchMessages.repeat;
import static io.kvbroker.client.WatchMessages.started;
import static org.assertj.core.api.Assertions.assertThat;

/** Readers scoring while the writer flips an engine between a whole chain and nothing never see a part of a chain. */
class IndexMirrorConcurrencyTest {
    private static final int G = 4;
    private static final int CHUNKS = 32;

    @Test
    void readersSeeAWholeChainOrNone() throws Exception {
        int[] tokens = new int[CHUNKS * G + 1];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = i * 13 + 1;
        }
        long[] chain = new ContentKeys(G).promptKeys("m", null, tokens);
        IndexMirror mirror = new IndexMirror();
        mirror.onMessage(started("b1", 0, G, true));
        mirror.onMessage(added(0, "steady/0", "m"));
        mirror.onMessage(added(1, "flip/0", "m"));
        // A steady engine on the same chain, so every key has two holders (the table's shared, copied layout).
        mirror.onMessage(changes(batch(0, 1, 1, false, chain, repeat(1, CHUNKS), repeat(Media.GPU, CHUNKS))));
        int flip = mirror.engineId("flip/0");
        // The chain's flips: all of it, then none by a cleared batch, all again on CPU, then none by media 0.
        List<WatchResponse> flips = List.of(
                changes(batch(1, 1, 2, false, chain, repeat(1, CHUNKS), repeat(Media.GPU, CHUNKS))),
                changes(batch(1, -1, 3, true, new long[0], new int[0], new int[0])),
                changes(batch(1, 2, 4, false, chain, repeat(1, CHUNKS), repeat(Media.CPU, CHUNKS))),
                changes(batch(1, 3, 5, false, chain, repeat(1, CHUNKS), repeat(0, CHUNKS))));

        int readerCount = 3;
        CountDownLatch readersRunning = new CountDownLatch(readerCount);
        CountDownLatch writerDone = new CountDownLatch(1);
        AtomicLong reads = new AtomicLong();
        ConcurrentLinkedQueue<String> partial = new ConcurrentLinkedQueue<>();
        List<Thread> readers = new ArrayList<>();
        for (int r = 0; r < readerCount; r++) {
            Thread reader = new Thread(() -> {
                readersRunning.countDown();
                while (writerDone.getCount() > 0) {
                    for (PrefixScore score : mirror.score("m", null, tokens, 0, 0)) {
                        if (score.engineId() == flip && score.totalBlocks() != CHUNKS) {
                            partial.add(score.toString());
                        }
                        if (score.engineId() != flip && score.gpuBlocks() != CHUNKS) {
                            partial.add("steady: " + score);
                        }
                    }
                    reads.incrementAndGet();
                }
            }, "mirror-reader-" + r);
            reader.start();
            readers.add(reader);
        }
        assertThat(readersRunning.await(10, TimeUnit.SECONDS)).isTrue();
        for (int i = 0; i < 20_000; i++) {
            mirror.onMessage(flips.get(i % flips.size()));
        }
        writerDone.countDown();
        for (Thread reader : readers) {
            reader.join(TimeUnit.SECONDS.toMillis(30));
        }
        assertThat(partial).isEmpty();
        assertThat(reads.get()).isPositive();
    }
}
