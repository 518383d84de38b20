package io.kvbroker.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The Java implementation against vectors from a second, independent one (scripts/gen-key-vectors.mjs over the
 * reference xxHash), so a gateway in another language can trust the documented algorithm.
 */
class ContentKeysTest {
    private static JsonNode vectors() throws Exception {
        try (InputStream in = ContentKeysTest.class.getResourceAsStream("/content-key-vectors.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    private static long hex(String text) {
        return Long.parseUnsignedLong(text, 16);
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).asInt();
        }
        return values;
    }

    private static String text(JsonNode node) {
        return node == null || node.isNull() ? null : node.asText();
    }

    /** JSON extra keys as the decoder gives them: strings, Longs, Doubles, Booleans, byte[] and lists. */
    private static Object extra(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isArray()) {
            List<Object> list = new ArrayList<>();
            node.forEach(item -> list.add(extra(item)));
            return list;
        }
        if (node.isObject() && node.has("i")) {
            return Long.parseLong(node.get("i").asText());
        }
        if (node.isObject() && node.has("f")) {
            return node.get("f").asDouble();
        }
        if (node.isObject() && node.has("b")) {
            return HexFormat.of().parseHex(node.get("b").asText());
        }
        if (node.isBoolean()) {
            return node.asBoolean();
        }
        return node.asText();
    }

    @Test
    void xxh64MatchesTheReference() throws Exception {
        for (JsonNode vector : vectors().get("xxh64")) {
            byte[] input = HexFormat.of().parseHex(vector.get("input").asText());
            assertThat(Xxh64.hash(input)).as(vector.get("input").asText()).isEqualTo(hex(vector.get("hash").asText()));
        }
    }

    @Test
    void promptAndBlockKeysMatchTheSecondImplementation() throws Exception {
        int checked = 0;
        for (JsonNode c : vectors().get("cases")) {
            String name = c.get("name").asText();
            ContentKeys keys = new ContentKeys(c.get("granularity").asInt());
            String model = c.get("model").asText();
            String lora = text(c.get("lora"));
            if (c.get("kind").asText().equals("prompt")) {
                assertThat(keys.root(model, lora)).as(name + " root").isEqualTo(hex(c.get("root").asText()));
                long[] expected = new long[c.get("keys").size()];
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = hex(c.get("keys").get(i).asText());
                }
                assertThat(keys.promptKeys(model, lora, ints(c.get("tokens")))).as(name).containsExactly(expected);
            } else {
                int[] parentTokens = ints(c.get("parentTokens"));
                long parent = keys.root(model, lora);
                for (int from = 0; from + keys.granularity() <= parentTokens.length; from += keys.granularity()) {
                    parent = keys.chunk(parent, parentTokens, from, null);
                }
                List<Object> normalized = ContentKeys.normalizeExtra(extra(c.get("extra")), lora);
                assertThat(normalized == null).as(name + " normalized to none").isEqualTo(c.get("normalized").isNull());
                long key = keys.block(parent, ints(c.get("tokens")), 0, c.get("span").asInt(), normalized);
                assertThat(key).as(name).isEqualTo(hex(c.get("key").asText()));
            }
            checked++;
        }
        assertThat(checked).isEqualTo(9);
    }

    @Test
    void nilAbsentAndAllNilExtraKeysAgree() {
        assertThat(ContentKeys.normalizeExtra(null, null)).isNull();
        assertThat(ContentKeys.normalizeExtra(java.util.Arrays.asList(null, null), null)).isNull();
        assertThat(ContentKeys.normalizeExtra(List.of("adapter"), "adapter")).isNull();
        assertThat(ContentKeys.normalizeExtra(List.of("adapter", "salt"), "adapter")).containsExactly("salt");
        assertThat(ContentKeys.normalizeExtra(List.of("adapter"), null)).containsExactly("adapter");
    }

    @Test
    void aSpanTwoBlockEndsOnTheSameKeyAsItsTwoChunks() {
        ContentKeys keys = new ContentKeys(16);
        int[] tokens = new int[64];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = 1000 + i;
        }
        long[] prompt = keys.promptKeys("m", null, tokens);
        long root = keys.root("m", null);
        assertThat(keys.block(root, tokens, 0, 2, null)).isEqualTo(prompt[1]);
        assertThat(keys.block(prompt[1], tokens, 32, 2, null)).isEqualTo(prompt[3]);
        assertThat(keys.root("m", "lora")).isNotEqualTo(root);
        assertThat(keys.root("m2", null)).isNotEqualTo(root);
    }

    @Test
    void laneHashingEqualsHashingTheSerializedBytes() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(3);
        for (int count : new int[] {2, 6, 16, 32, 64}) {
            for (int i = 0; i < 200; i++) {
                int[] tokens = new int[count + 3];
                for (int t = 0; t < tokens.length; t++) {
                    tokens[t] = random.nextInt();
                }
                long parent = random.nextLong();
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(8 + 4 * count)
                        .order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(parent);
                for (int t = 3; t < 3 + count; t++) {
                    bytes.putInt(tokens[t]);
                }
                assertThat(Xxh64.hashChunk(parent, tokens, 3, count)).isEqualTo(Xxh64.hash(bytes.array(), 0,
                        bytes.capacity(), 0));
            }
        }
    }

    @Test
    void granularityIsBounded() {
        assertThatThrownBy(() -> new ContentKeys(0)).isInstanceOf(IllegalArgumentException.class);
    }
}
