package io.kvbroker.client;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.HolderTable;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.WatchResponse;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import static io.kvbroker.client.WatchMessages.added;
import static io.kvbroker.client.WatchMessages.batch;
import static io.kvbroker.client.WatchMessages.changes;
import static io.kvbroker.client.WatchMessages.removed;
import static io.kvbroker.client.WatchMessages.snapshot;
import static io.kvbroker.client.WatchMessages.started;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A seeded random stream (streams with shuffled engine ids, snapshots in parts, cleared batches, removals) applied to
 * the mirror and to a plain model of name to key to (span, media): holdings equal after every message, scores equal
 * to PrefixScorer over a holder table filled from the model.
 */
class IndexMirrorRandomTest {
    private static final int G = 4;
    private static final String MODEL = "m";
    private static final String[] NAMES = {"a/0", "a/1", "b/0", "c/0", "d/0", "e/0"};
    private static final int[] TOKENS = new int[12 * G + 1];
    private static final long[] CHAIN;

    static {
        for (int i = 0; i < TOKENS.length; i++) {
            TOKENS[i] = 7 * i + 3;
        }
        CHAIN = new ContentKeys(G).promptKeys(MODEL, null, TOKENS);
    }

    private final SplittableRandom random = new SplittableRandom(42);
    private final IndexMirror mirror = new IndexMirror();
    /** The reference: name to key to packed span << 4 | media. */
    private final Map<String, Map<Long, Integer>> model = new TreeMap<>();
    /** The current stream's ids to names. */
    private final Map<Integer, String> stream = new HashMap<>();
    private long brokerSequence;

    @Test
    void mirrorEqualsAPlainModelAfterEveryMessage() {
        newStream(true);
        for (int step = 0; step < 3_000; step++) {
            int op = random.nextInt(100);
            if (stream.isEmpty() || op < 2) {
                newStream(random.nextInt(3) == 0);
            } else if (op < 4) {
                int id = anyStreamId();
                String name = stream.remove(id);
                model.remove(name);
                apply(removed(id, name));
            } else if (op < 8) {
                snapshotInParts(anyStreamId());
            } else {
                List<EngineBatch> batches = new ArrayList<>();
                for (int n = 1 + random.nextInt(3); n > 0; n--) {
                    batches.add(randomBatch(anyStreamId()));
                }
                apply(changes(batches.toArray(EngineBatch[]::new)));
            }
            if (step % 50 == 0) {
                assertScoresMatch();
            }
        }
        assertScoresMatch();
    }

    private void newStream(boolean whole) {
        if (whole) {
            model.clear();
        }
        apply(started("broker-" + random.nextInt(3), brokerSequence, G, whole));
        stream.clear();
        List<String> names = new ArrayList<>(List.of(NAMES));
        int id = random.nextInt(100);
        while (!names.isEmpty()) {
            String name = names.remove(random.nextInt(names.size()));
            if (random.nextInt(5) > 0) {
                stream.put(id, name);
                apply(added(id, name, MODEL));
                model.computeIfAbsent(name, k -> new HashMap<>());
                if (whole) {
                    snapshotInParts(id);
                }
            }
            id += 1 + random.nextInt(3);
        }
    }

    private void snapshotInParts(int id) {
        Map<Long, Integer> holdings = new HashMap<>();
        for (int n = random.nextInt(20); n > 0; n--) {
            holdings.put(anyKey(), anyHolding());
        }
        List<Map.Entry<Long, Integer>> entries = new ArrayList<>(holdings.entrySet());
        int parts = 1 + random.nextInt(3);
        brokerSequence++;
        for (int part = 0; part < parts; part++) {
            List<Map.Entry<Long, Integer>> slice = entries.subList(entries.size() * part / parts,
                    entries.size() * (part + 1) / parts);
            long[] keys = slice.stream().mapToLong(Map.Entry::getKey).toArray();
            int[] spans = slice.stream().mapToInt(e -> e.getValue() >>> 4).toArray();
            int[] media = slice.stream().mapToInt(e -> e.getValue() & 0xF).toArray();
            if (part == 0) {
                model.put(stream.get(id), new HashMap<>());
            }
            slice.forEach(e -> model.get(stream.get(id)).put(e.getKey(), e.getValue()));
            apply(snapshot(id, part, part == parts - 1, brokerSequence, brokerSequence, keys, spans, media));
        }
    }

    private EngineBatch randomBatch(int id) {
        boolean cleared = random.nextInt(15) == 0;
        int n = random.nextInt(8);
        long[] keys = new long[n];
        int[] spans = new int[n];
        int[] media = new int[n];
        Map<Long, Integer> holdings = model.get(stream.get(id));
        if (cleared) {
            holdings.clear();
        }
        for (int i = 0; i < n; i++) {
            keys[i] = anyKey();
            if (random.nextInt(4) == 0) {
                spans[i] = 1;
                holdings.remove(keys[i]);
            } else {
                int packed = anyHolding();
                spans[i] = packed >>> 4;
                media[i] = packed & 0xF;
                holdings.put(keys[i], packed);
            }
        }
        brokerSequence++;
        return batch(id, brokerSequence, brokerSequence, cleared, keys, spans, media);
    }

    private void apply(WatchResponse message) {
        mirror.onMessage(message);
        for (Map.Entry<String, Map<Long, Integer>> engine : model.entrySet()) {
            int id = mirror.engineId(engine.getKey());
            assertThat(mirror.holdings(id)).as(engine.getKey()).isEqualTo(engine.getValue());
        }
        for (String name : NAMES) {
            if (!model.containsKey(name) && mirror.engineId(name) >= 0) {
                assertThat(mirror.holdings(mirror.engineId(name))).as(name).isEmpty();
            }
        }
    }

    private void assertScoresMatch() {
        HolderTable table = new HolderTable();
        model.forEach((name, holdings) -> holdings.forEach((key, packed) ->
                table.add(key, mirror.engineId(name), packed >>> 4, packed & 0xF)));
        for (int length : new int[] {TOKENS.length, 5 * G + 1, 2}) {
            int[] prompt = java.util.Arrays.copyOf(TOKENS, length);
            List<PrefixScore> expected = new PrefixScorer(PrefixScorer.Weights.DEFAULT).score(new ContentKeys(G),
                    new ContentKeys(G).root(MODEL, null), prompt, PrefixScorer.chunksToScore(length, G), table, null,
                    0, 0);
            assertThat(mirror.score(MODEL, null, prompt, 0, 0)).isEqualTo(expected);
        }
    }

    /** Mostly the prompt's own chain, so that scores find prefixes; sometimes a key no prompt reaches. */
    private long anyKey() {
        return random.nextInt(4) == 0 ? random.nextLong() % 1_000 : CHAIN[random.nextInt(CHAIN.length)];
    }

    private int anyHolding() {
        int span = random.nextInt(5) == 0 ? 2 : 1;
        int media = random.nextInt(4) == 0 ? 1 + random.nextInt(15) : Media.GPU;
        return span << 4 | media;
    }

    private int anyStreamId() {
        List<Integer> ids = new ArrayList<>(stream.keySet());
        return ids.get(random.nextInt(ids.size()));
    }
}
