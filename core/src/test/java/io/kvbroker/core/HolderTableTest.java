package io.kvbroker.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The holder table and its primitive map against plain collections, through sparse, dense and single layouts. */
class HolderTableTest {

    @Test
    void longIntTableMatchesAHashMapUnderChurn() {
        SplittableRandom random = new SplittableRandom(1);
        LongIntTable table = new LongIntTable();
        Map<Long, Integer> model = new HashMap<>();
        for (int i = 0; i < 200_000; i++) {
            // A small key range forces collisions, long probe runs and backward shifts.
            long key = random.nextInt(2_000) * 0x100000000L + random.nextInt(3);
            if (random.nextInt(3) == 0) {
                table.remove(key);
                model.remove(key);
            } else {
                int value = random.nextInt(Integer.MAX_VALUE);
                table.put(key, value);
                model.put(key, value);
            }
            if (i % 1_000 == 0) {
                assertThat(table.size()).isEqualTo(model.size());
                for (int k = 0; k < 50; k++) {
                    long probe = random.nextInt(2_000) * 0x100000000L + random.nextInt(3);
                    assertThat(table.get(probe)).isEqualTo(model.getOrDefault(probe, -1));
                }
            }
        }
        for (Map.Entry<Long, Integer> entry : model.entrySet()) {
            assertThat(table.get(entry.getKey())).isEqualTo(entry.getValue());
        }
    }

    @Test
    void holdersMatchAModelAcrossLayouts() {
        SplittableRandom random = new SplittableRandom(2);
        HolderTable table = new HolderTable();
        // key -> engine -> packed (span, media)
        Map<Long, Map<Integer, int[]>> model = new HashMap<>();
        for (int i = 0; i < 100_000; i++) {
            long key = random.nextInt(20);
            int engine = random.nextInt(200);
            Map<Integer, int[]> holders = model.computeIfAbsent(key, k -> new TreeMap<>());
            int op = random.nextInt(10);
            if (op < 5) {
                int span = random.nextInt(4) == 0 ? 2 : 1;
                int media = random.nextInt(5) == 0 ? Media.CPU | Media.GPU : Media.GPU;
                if (holders.containsKey(engine)) {
                    table.update(key, engine, span, media);
                } else {
                    table.add(key, engine, span, media);
                }
                holders.put(engine, new int[] {span, media});
            } else {
                table.remove(key, engine);
                holders.remove(engine);
            }
            if (i % 500 == 0) {
                for (long k = 0; k < 20; k++) {
                    Map<Integer, int[]> expected = model.getOrDefault(k, Map.of());
                    List<String> actual = new ArrayList<>();
                    table.forEachHolder(k, (e, span, media) -> actual.add(e + ":" + span + ":" + media));
                    List<String> wanted = new ArrayList<>();
                    expected.forEach((e, sm) -> wanted.add(e + ":" + sm[0] + ":" + sm[1]));
                    assertThat(actual).as("key %d at %d", k, i).containsExactlyInAnyOrderElementsOf(wanted);
                    for (int e = 0; e < 200; e += 7) {
                        assertThat(table.holds(k, e)).isEqualTo(expected.containsKey(e));
                    }
                }
            }
        }
        assertThat(table.keys()).isEqualTo(model.values().stream().filter(m -> !m.isEmpty()).count());
    }
}
