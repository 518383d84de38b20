package io.kvbroker.codec;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvbroker.codec.WireFrames.LiveMessage;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Decodes every captured vLLM vector and checks each value field by field. */
class GoldenVectorTest {
    private final KvEventDecoder decoder = new KvEventDecoder();

    private KvEventBatch decode(String name) throws MalformedMessageException {
        return decoder.decode(Vectors.payload(name));
    }

    private <T extends KvEvent> T single(String name, Class<T> type) throws MalformedMessageException {
        KvEventBatch batch = decode(name);
        assertThat(batch.timestamp()).isEqualTo(Vectors.TS);
        assertThat(batch.dataParallelRank()).isZero();
        assertThat(batch.skippedEvents()).isZero();
        assertThat(batch.skippedFields()).isZero();
        assertThat(batch.events()).hasSize(1);
        return type.cast(batch.events().get(0));
    }

    @Test
    void framesCarryTopicSequenceAndThePayloadFile() throws Exception {
        for (int seq = 0; seq < Vectors.NAMES.size(); seq++) {
            String name = Vectors.NAMES.get(seq);
            LiveMessage message = WireFrames.live(Vectors.frames(name));
            assertThat(new String(message.topic(), StandardCharsets.UTF_8)).isEqualTo(Vectors.TOPIC);
            assertThat(message.sequence()).isEqualTo(seq);
            assertThat(message.payload()).isEqualTo(Vectors.payload(name));
        }
    }

    @Test
    void warmupAndMapClearDecodeAsClearOfAllMedia() throws Exception {
        assertThat(single("00_warmup_all_blocks_cleared", AllBlocksCleared.class).medium())
                .isEqualTo(Medium.UNSPECIFIED);
        assertThat(single("04_map_all_blocks_cleared", AllBlocksCleared.class)).isEqualTo(AllBlocksCleared.ALL);
        assertThat(single("08_array_all_blocks_cleared", AllBlocksCleared.class)).isEqualTo(AllBlocksCleared.ALL);
    }

    @Test
    void mapStoredRootDecodesEveryIntegerWidth() throws Exception {
        BlockStored s = single("01_map_block_stored_root", BlockStored.class);
        assertThat(s.blockHashes()).containsExactly(0xDEADBEEF12345678L, 0xFFFFFFFFFFFFFFFFL);
        assertThat(s.hasParent()).isFalse();
        assertThat(s.tokenIds()).containsExactly(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                128000, 128006, 9125, 128007, 271, 0, 127, 128, 255, 256, 65535, 65536, 128255, 42, 2, 3);
        assertThat(s.blockSize()).isEqualTo(16);
        assertThat(s.loraId()).isEqualTo(KvEvent.ABSENT);
        assertThat(s.medium()).isEqualTo(Medium.GPU);
        assertThat(s.loraName()).isNull();
        assertThat(s.extraKeys()).containsExactly(null, null);
        assertThat(s.groupIdx()).isZero();
        assertThat(s.kind()).isEqualTo(GroupKind.FULL_ATTENTION);
        assertThat(s.slidingWindow()).isEqualTo(KvEvent.ABSENT);
        assertThat(s.locality()).isNull();
        assertThat(s.tokenless()).isFalse();
    }

    @Test
    void mapStoredChildCarriesLoraAndSaltExtraKeys() throws Exception {
        BlockStored s = single("02_map_block_stored_child_lora_salt", BlockStored.class);
        assertThat(s.blockHashes()).containsExactly(7L);
        assertThat(s.hasParent()).isTrue();
        assertThat(s.parentHash()).isEqualTo(0xFFFFFFFFFFFFFFFFL);
        assertThat(s.tokenIds()).containsExactly(IntStream.rangeClosed(1, 16).toArray());
        assertThat(s.blockSize()).isEqualTo(16);
        assertThat(s.loraId()).isEqualTo(3);
        assertThat(s.medium()).isEqualTo(Medium.GPU);
        assertThat(s.loraName()).isEqualTo("adapter");
        assertThat(s.extraKeys()).containsExactly(List.of("adapter", "salt-1"));
        assertThat(s.groupIdx()).isZero();
        assertThat(s.kind()).isEqualTo(GroupKind.FULL_ATTENTION);
    }

    @Test
    void mapRemovedIsClassifiedByTheKindsTheEnginesStoresTaught() throws Exception {
        BlockRemoved alone = single("03_map_block_removed", BlockRemoved.class);
        assertThat(alone.blockHashes()).containsExactly(0x8000000000000001L, 7L);
        assertThat(alone.medium()).isEqualTo(Medium.GPU);
        assertThat(alone.groupIdx()).isZero();
        assertThat(alone.kind()).isEqualTo(GroupKind.UNKNOWN);
        assertThat(alone.kind().reusablePrefix()).isFalse();

        GroupKinds kinds = new GroupKinds();
        for (String name : Vectors.NAMES.subList(0, 3)) {
            byte[] payload = Vectors.payload(name);
            decoder.decode(payload, 0, payload.length, kinds);
        }
        byte[] removal = Vectors.payload("03_map_block_removed");
        BlockRemoved taught = (BlockRemoved) decoder.decode(removal, 0, removal.length, kinds).events().get(0);
        assertThat(taught.kind()).isEqualTo(GroupKind.FULL_ATTENTION);
    }

    @Test
    void binHashesAreReducedToTheirLastEightBytes() throws Exception {
        BlockStored s = single("05_map_bytes_hashes", BlockStored.class);
        assertThat(s.blockHashes()).containsExactly(0x18191a1b1c1d1e1fL);
        assertThat(s.hasParent()).isTrue();
        assertThat(s.parentHash()).isEqualTo(0x7c7d7e7f80818283L);
        assertThat(s.tokenIds()).containsExactly(IntStream.rangeClosed(1, 16).toArray());
        assertThat(s.blockSize()).isEqualTo(16);
        assertThat(s.loraId()).isEqualTo(KvEvent.ABSENT);
        assertThat(s.medium()).isEqualTo(Medium.GPU);
        assertThat(s.loraName()).isNull();
        assertThat(s.extraKeys()).isNull();
        assertThat(s.groupIdx()).isEqualTo(KvEvent.ABSENT);
        assertThat(s.kind()).isEqualTo(GroupKind.UNSPECIFIED);
        assertThat(s.kind().reusablePrefix()).isTrue();
    }

    @Test
    void arrayStoredDecodesLikeItsMapTwin() throws Exception {
        BlockStored s = single("06_array_block_stored", BlockStored.class);
        assertThat(s.blockHashes()).containsExactly(0xDEADBEEF12345678L);
        assertThat(s.hasParent()).isFalse();
        assertThat(s.tokenIds()).containsExactly(IntStream.rangeClosed(1, 16).toArray());
        assertThat(s.blockSize()).isEqualTo(16);
        assertThat(s.loraId()).isEqualTo(KvEvent.ABSENT);
        assertThat(s.medium()).isEqualTo(Medium.GPU);
        assertThat(s.loraName()).isNull();
        assertThat(s.extraKeys()).containsExactly((Object) null);
        assertThat(s.groupIdx()).isZero();
        assertThat(s.kind()).isEqualTo(GroupKind.FULL_ATTENTION);
        assertThat(s.slidingWindow()).isEqualTo(KvEvent.ABSENT);
    }

    @Test
    void arrayRemovedCarriesMediumAndGroup() throws Exception {
        BlockRemoved r = single("07_array_block_removed", BlockRemoved.class);
        assertThat(r.blockHashes()).containsExactly(0xDEADBEEF12345678L);
        assertThat(r.medium()).isEqualTo(Medium.GPU);
        assertThat(r.groupIdx()).isZero();
    }

    @Test
    void oldestArrayShapeWithEveryOptionalFieldNil() throws Exception {
        BlockStored s = single("09_array_block_stored_v090_shape", BlockStored.class);
        assertThat(s.blockHashes()).containsExactly(1L);
        assertThat(s.hasParent()).isFalse();
        assertThat(s.tokenIds()).containsExactly(1, 2);
        assertThat(s.blockSize()).isEqualTo(2);
        assertThat(s.loraId()).isEqualTo(KvEvent.ABSENT);
        assertThat(s.medium()).isEqualTo(Medium.UNSPECIFIED);
        assertThat(s.medium().effective()).isEqualTo(Medium.GPU);
        assertThat(s.loraName()).isNull();
        assertThat(s.extraKeys()).isNull();
        assertThat(s.groupIdx()).isEqualTo(KvEvent.ABSENT);
        assertThat(s.kind()).isEqualTo(GroupKind.UNSPECIFIED);
        assertThat(s.slidingWindow()).isEqualTo(KvEvent.ABSENT);
    }

    /** A second, independent check: every vector against the generic decoding in summary.json. */
    @Test
    void everyVectorAgreesWithTheCapturedSummary() throws Exception {
        JsonNode summary = new ObjectMapper().readTree(Vectors.text("summary.json"));
        assertThat(summary).hasSize(Vectors.NAMES.size());
        for (JsonNode entry : summary) {
            String name = entry.get("name").asText();
            byte[] payload = Vectors.payload(name);
            assertThat(payload).hasSize(entry.get("payload_len").asInt());
            KvEventBatch batch = decoder.decode(payload);
            JsonNode decoded = entry.get("decoded");
            assertThat(batch.timestamp()).isEqualTo(decoded.get(0).asDouble());
            assertThat(batch.dataParallelRank()).isEqualTo(decoded.get(2).asInt());
            JsonNode events = decoded.get(1);
            assertThat(batch.events()).as(name).hasSize(events.size());
            for (int i = 0; i < events.size(); i++) {
                assertAgrees(name, events.get(i), batch.events().get(i));
            }
        }
    }

    private static void assertAgrees(String name, JsonNode json, KvEvent event) {
        boolean array = json.isArray();
        String tag = array ? json.get(0).asText() : json.get("type").asText();
        assertThat(event.getClass().getSimpleName()).as(name).isEqualTo(tag);
        if (event instanceof BlockStored s) {
            JsonNode hashes = array ? json.get(1) : json.get("block_hashes");
            JsonNode tokens = array ? json.get(3) : json.get("token_ids");
            JsonNode blockSize = array ? json.get(4) : json.get("block_size");
            assertThat(s.blockHashes()).as(name).containsExactly(expectedHashes(hashes));
            assertThat(s.tokenIds()).as(name).containsExactly(toInts(tokens));
            assertThat(s.blockSize()).as(name).isEqualTo(blockSize.asInt());
        } else if (event instanceof BlockRemoved r) {
            JsonNode hashes = array ? json.get(1) : json.get("block_hashes");
            assertThat(r.blockHashes()).as(name).containsExactly(expectedHashes(hashes));
        }
    }

    /** Integers as unsigned 64-bit; Python bytes reprs ({@code b'..'}) by their last 8 bytes. */
    private static long[] expectedHashes(JsonNode hashes) {
        long[] values = new long[hashes.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode hash = hashes.get(i);
            values[i] = hash.isTextual() ? lastEight(pythonBytes(hash.asText()))
                    : new BigInteger(hash.asText()).longValue();
        }
        return values;
    }

    private static int[] toInts(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).asInt();
        }
        return values;
    }

    private static long lastEight(byte[] bytes) {
        long value = 0;
        for (byte b : Arrays.copyOfRange(bytes, bytes.length - 8, bytes.length)) {
            value = (value << 8) | (b & 0xff);
        }
        return value;
    }

    /** Parses a Python bytes literal such as {@code b'ab\x00\t'}. */
    private static byte[] pythonBytes(String literal) {
        String body = literal.substring(2, literal.length() - 1);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c != '\\') {
                out.write(c);
                continue;
            }
            char e = body.charAt(++i);
            switch (e) {
                case 'x' -> {
                    out.write(HexFormat.fromHexDigits(body, i + 1, i + 3));
                    i += 2;
                }
                case 't' -> out.write('\t');
                case 'n' -> out.write('\n');
                case 'r' -> out.write('\r');
                default -> out.write(e);
            }
        }
        return out.toByteArray();
    }

    @Test
    void capturedReplayExchangeParsesInOrderToTheEndMarker() throws Exception {
        JsonNode capture = new ObjectMapper().readTree(Vectors.text("replay_capture.json"));
        JsonNode request = capture.get("dealer_request_hex");
        byte[][] ours = WireFrames.replayRequest(7);
        assertThat(ours[0]).isEmpty();
        assertThat(HexFormat.of().formatHex(ours[1])).isEqualTo(request.get(1).asText());

        JsonNode replies = capture.get("dealer_replies");
        long expectedSeq = 7;
        for (JsonNode reply : replies) {
            byte[][] frames = new byte[reply.size()][];
            for (int i = 0; i < frames.length; i++) {
                frames[i] = HexFormat.of().parseHex(reply.get(i).asText());
            }
            ReplayMessage message = WireFrames.replay(frames);
            if (message.isEnd()) {
                assertThat(expectedSeq).isEqualTo(10);
                continue;
            }
            assertThat(message.sequence()).isEqualTo(expectedSeq);
            assertThat(new String(message.topic(), StandardCharsets.UTF_8)).isEqualTo(Vectors.TOPIC);
            assertThat(message.payload()).isEqualTo(Vectors.payload(Vectors.NAMES.get((int) expectedSeq)));
            assertThat(decoder.decode(message.payload()).events()).hasSize(1);
            expectedSeq++;
        }
        assertThat(WireFrames.replay(lastFrames(replies)).isEnd()).isTrue();
    }

    private static byte[][] lastFrames(JsonNode replies) {
        JsonNode last = replies.get(replies.size() - 1);
        byte[][] frames = new byte[last.size()][];
        for (int i = 0; i < frames.length; i++) {
            frames[i] = HexFormat.of().parseHex(last.get(i).asText());
        }
        return frames;
    }
}
