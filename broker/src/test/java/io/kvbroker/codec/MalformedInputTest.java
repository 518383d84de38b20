package io.kvbroker.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvbroker.codec.MalformedMessageException.Reason;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.KvEventBatch;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessagePacker;

/** Bad engine input gets a typed error with a reason, never another exception and never a huge allocation. */
class MalformedInputTest {
    private final KvEventDecoder decoder = new KvEventDecoder();

    interface Writer {
        void write(MessagePacker packer) throws IOException;
    }

    static byte[] pack(Writer writer) throws IOException {
        MessageBufferPacker packer = MessagePack.newDefaultBufferPacker();
        writer.write(packer);
        return packer.toByteArray();
    }

    /** A batch header [ts, [ one event ], 0] around the event the writer packs. */
    static byte[] batchOf(Writer event) throws IOException {
        return pack(p -> {
            p.packArrayHeader(3).packDouble(1.5).packArrayHeader(1);
            event.write(p);
            p.packInt(0);
        });
    }

    private Reason reasonOf(byte[] payload) {
        try {
            decoder.decode(payload);
        } catch (MalformedMessageException e) {
            return e.reason();
        }
        throw new AssertionError("decoded without error: " + HexFormat.of().formatHex(payload));
    }

    @Test
    void everyTruncationOfEveryGoldenPayloadIsRejectedAsShort() {
        for (String name : Vectors.NAMES) {
            byte[] payload = Vectors.payload(name);
            for (int length = 0; length < payload.length; length++) {
                Reason reason = reasonOf(Arrays.copyOf(payload, length));
                assertThat(reason).as(name + " cut at " + length)
                        .isIn(Reason.TRUNCATED, Reason.LENGTH_EXCEEDS_INPUT);
            }
        }
    }

    @Test
    void bytesAfterTheBatchAreRejected() {
        byte[] payload = Vectors.payload("04_map_all_blocks_cleared");
        assertThat(reasonOf(Arrays.copyOf(payload, payload.length + 1))).isEqualTo(Reason.TRAILING_BYTES);
    }

    @Test
    void batchShapeIsChecked() throws IOException {
        assertThat(reasonOf(pack(p -> p.packMapHeader(0)))).isEqualTo(Reason.BAD_BATCH_SHAPE);
        assertThat(reasonOf(pack(p -> p.packArrayHeader(1).packDouble(1.0)))).isEqualTo(Reason.BAD_BATCH_SHAPE);
        assertThat(reasonOf(pack(p -> p.packArrayHeader(2).packString("x").packArrayHeader(0))))
                .isEqualTo(Reason.WRONG_TYPE);
        assertThat(reasonOf(pack(p -> p.packArrayHeader(2).packDouble(1.0).packNil())))
                .isEqualTo(Reason.WRONG_TYPE);
        assertThat(reasonOf(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(0).packInt(-1))))
                .isEqualTo(Reason.OUT_OF_RANGE);
        assertThat(reasonOf(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(1).packInt(5).packInt(0))))
                .isEqualTo(Reason.WRONG_TYPE);
    }

    @Test
    void legacyTwoElementBatchAndExtraElementsDecode() throws Exception {
        KvEventBatch legacy = decoder.decode(pack(p -> p.packArrayHeader(2).packLong(7).packArrayHeader(0)));
        assertThat(legacy.timestamp()).isEqualTo(7.0);
        assertThat(legacy.dataParallelRank()).isEqualTo(-1);
        KvEventBatch future = decoder.decode(pack(p ->
                p.packArrayHeader(4).packDouble(1.0).packArrayHeader(0).packNil().packString("new")));
        assertThat(future.dataParallelRank()).isEqualTo(-1);
        assertThat(future.skippedFields()).isEqualTo(1);
    }

    @Test
    void wrongFieldTypesNameTheFieldAndTheEvent() throws IOException {
        byte[] tokensAsString = batchOf(p -> p.packArrayHeader(5).packString("BlockStored")
                .packArrayHeader(1).packInt(1).packNil().packString("1,2").packInt(16));
        assertThatThrownBy(() -> decoder.decode(tokensAsString))
                .isInstanceOf(MalformedMessageException.class)
                .hasMessageContaining("event 0, token_ids")
                .hasMessageContaining("wrong_type");
        assertThat(reasonOf(batchOf(p -> p.packArrayHeader(2).packString("BlockRemoved").packString("x"))))
                .isEqualTo(Reason.WRONG_TYPE);
        assertThat(reasonOf(batchOf(p -> p.packArrayHeader(3).packString("BlockRemoved")
                .packArrayHeader(1).packInt(1).packInt(5)))).isEqualTo(Reason.WRONG_TYPE);
        assertThat(reasonOf(batchOf(p -> p.packArrayHeader(5).packString("BlockStored")
                .packArrayHeader(1).packInt(1).packNil().packArrayHeader(0).packInt(-16))))
                .isEqualTo(Reason.OUT_OF_RANGE);
        assertThat(reasonOf(batchOf(p -> p.packArrayHeader(4).packString("BlockStored")
                .packArrayHeader(1).packInt(1).packNil().packArrayHeader(1).packLong(1L << 40))))
                .isEqualTo(Reason.OUT_OF_RANGE);
        assertThat(reasonOf(batchOf(p -> p.packArrayHeader(2).packString("BlockRemoved")
                .packArrayHeader(1).packBoolean(true)))).isEqualTo(Reason.WRONG_TYPE);
        assertThat(reasonOf(batchOf(p -> p.packString("BlockStored")))).isEqualTo(Reason.WRONG_TYPE);
    }

    @Test
    void missingHashesAreAMissingField() throws IOException {
        assertThat(reasonOf(batchOf(p -> p.packMapHeader(2).packString("type").packString("BlockRemoved")
                .packString("medium").packString("GPU")))).isEqualTo(Reason.MISSING_FIELD);
        assertThat(reasonOf(batchOf(p -> p.packArrayHeader(2).packString("BlockStored").packNil())))
                .isEqualTo(Reason.MISSING_FIELD);
    }

    @Test
    void neverUsedFormatByteIsRejected() {
        assertThat(reasonOf(new byte[] {(byte) 0x92, (byte) 0xc1, (byte) 0x90})).isEqualTo(Reason.INVALID_FORMAT);
    }

    @Test
    void hugeDeclaredLengthsAreCheckedBeforeAnythingIsAllocated() throws Exception {
        byte[][] inputs = {
            // events: array32 of 2^32-1 elements
            concat(pack(p -> p.packArrayHeader(3).packDouble(1.0)), hex("ddffffffff")),
            // token_ids: array32 declaring two billion ints
            concat(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(1).packArrayHeader(4)
                    .packString("BlockStored").packArrayHeader(1).packInt(1).packNil()), hex("dd7fffffff")),
            // block_hashes: array32 declaring two billion hashes
            concat(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(1).packArrayHeader(2)
                    .packString("BlockRemoved")), hex("dd7fffffff")),
            // a bin hash declaring 2 GB
            concat(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(1).packArrayHeader(2)
                    .packString("BlockRemoved").packArrayHeader(1)), hex("c67fffffff01")),
            // lora_name: str32 declaring 2 GB
            concat(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(1).packArrayHeader(8)
                    .packString("BlockStored").packArrayHeader(1).packInt(1).packNil().packArrayHeader(0)
                    .packInt(0).packNil().packNil()), hex("db7fffffff41")),
            // extra keys: a bin32 declaring 2 GB
            concat(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(1).packArrayHeader(9)
                    .packString("BlockStored").packArrayHeader(1).packInt(1).packNil().packArrayHeader(0)
                    .packInt(0).packNil().packNil().packNil().packArrayHeader(1).packArrayHeader(1)),
                    hex("c67fffffff00")),
            // a map declaring 2^31 entries
            concat(pack(p -> p.packArrayHeader(3).packDouble(1.0).packArrayHeader(1)), hex("df7fffffff")),
        };
        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        for (byte[] input : inputs) {
            decoder.decode(Vectors.payload("01_map_block_stored_root"));
            long before = threads.getCurrentThreadAllocatedBytes();
            Reason reason = reasonOf(input);
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            assertThat(reason).as(HexFormat.of().formatHex(input))
                    .isIn(Reason.LENGTH_EXCEEDS_INPUT, Reason.TRUNCATED);
            assertThat(allocated).as("bytes allocated for " + HexFormat.of().formatHex(input)).isLessThan(64 * 1024);
        }
    }

    @Test
    void deepNestingIsRejectedWithoutExhaustingTheStack() throws IOException {
        byte[] deepExtraKeys = batchOf(p -> {
            p.packMapHeader(4).packString("type").packString("BlockStored")
                    .packString("block_hashes").packArrayHeader(1).packInt(1)
                    .packString("token_ids").packArrayHeader(0)
                    .packString("extra_keys").packArrayHeader(1);
            for (int i = 0; i < 100_000; i++) {
                p.packArrayHeader(1);
            }
            p.packNil();
        });
        assertThat(reasonOf(deepExtraKeys)).isEqualTo(Reason.TOO_DEEP);

        // Deep nesting under an unknown key is skipped iteratively and counted, not recursed into.
        byte[] deepUnknown = batchOf(p -> {
            p.packMapHeader(3).packString("type").packString("BlockRemoved")
                    .packString("block_hashes").packArrayHeader(1).packInt(9)
                    .packString("future_field");
            for (int i = 0; i < 100_000; i++) {
                p.packArrayHeader(1);
            }
            p.packNil();
        });
        KvEventBatch batch = decodeOrFail(deepUnknown);
        assertThat(batch.skippedFields()).isEqualTo(1);
        assertThat(((BlockRemoved) batch.events().get(0)).blockHashes()).containsExactly(9L);
    }

    @Test
    void unknownTagsAndKeysAreSkippedAndCounted() throws Exception {
        KvEventBatch batch = decoder.decode(pack(p -> {
            p.packArrayHeader(3).packDouble(2.0).packArrayHeader(5);
            p.packArrayHeader(3).packString("BlockMigrated").packInt(1).packArrayHeader(2).packInt(1).packInt(2);
            p.packMapHeader(2).packString("type").packString("KVCacheFlushed").packString("x").packInt(1);
            p.packMapHeader(1).packString("not_type").packString("BlockStored");
            p.packMapHeader(4).packString("type").packString("BlockRemoved").packString("block_hashes")
                    .packArrayHeader(1).packInt(5).packString("medium").packString("CPU")
                    .packString("tier_latency_us").packInt(40);
            p.packArrayHeader(14).packString("BlockStored").packArrayHeader(1).packInt(6).packNil()
                    .packArrayHeader(0).packInt(0).packNil().packString("NVME").packNil().packNil().packInt(1)
                    .packString("chunked_local_attention").packInt(128).packString("extra1").packString("extra2");
            p.packInt(1);
        }));
        assertThat(batch.skippedEvents()).isEqualTo(3);
        assertThat(batch.skippedFields()).isEqualTo(3);
        assertThat(batch.events()).hasSize(2);
        assertThat(((BlockRemoved) batch.events().get(0)).medium()).isEqualTo(io.kvbroker.event.Medium.CPU);
        BlockStored stored = (BlockStored) batch.events().get(1);
        assertThat(stored.medium()).isEqualTo(io.kvbroker.event.Medium.OTHER);
        assertThat(stored.kind()).isEqualTo(io.kvbroker.event.GroupKind.OTHER);
        assertThat(stored.slidingWindow()).isEqualTo(128);
        assertThat(stored.tokenless()).isTrue();
    }

    @Test
    void hashesOfEveryIntegerWidthAndSignDecode() throws Exception {
        byte[] payload = batchOf(p -> p.packArrayHeader(2).packString("BlockRemoved")
                .packArrayHeader(8).packInt(5).packInt(200).packInt(60_000).packLong(4_000_000_000L)
                .packLong(1L << 40).packInt(-3).packLong(Long.MIN_VALUE)
                .packBigInteger(new java.math.BigInteger("18446744073709551614")));
        BlockRemoved removed = (BlockRemoved) decoder.decode(payload).events().get(0);
        assertThat(removed.blockHashes()).containsExactly(5L, 200L, 60_000L, 4_000_000_000L, 1L << 40, -3L,
                Long.MIN_VALUE, -2L);
        byte[] shortBin = batchOf(p -> p.packArrayHeader(2).packString("BlockRemoved")
                .packArrayHeader(1).packBinaryHeader(2).writePayload(new byte[] {1, 2}));
        assertThat(((BlockRemoved) decoder.decode(shortBin).events().get(0)).blockHashes()).containsExactly(0x0102L);
        assertThat(reasonOf(batchOf(p -> p.packArrayHeader(2).packString("BlockRemoved")
                .packArrayHeader(1).packBinaryHeader(0)))).isEqualTo(Reason.OUT_OF_RANGE);
    }

    @Test
    void framesOfTheWrongCountOrSizeAreRejected() {
        byte[] payload = Vectors.payload("04_map_all_blocks_cleared");
        byte[] seq = WireFrames.sequenceFrame(3);
        assertThatThrownBy(() -> WireFrames.live(new byte[][] {new byte[0], payload}))
                .isInstanceOfSatisfying(MalformedMessageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.WRONG_FRAME_COUNT));
        assertThatThrownBy(() -> WireFrames.live(new byte[][] {new byte[0], seq, payload, payload}))
                .isInstanceOfSatisfying(MalformedMessageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.WRONG_FRAME_COUNT));
        assertThatThrownBy(() -> WireFrames.live(new byte[][] {new byte[0], new byte[7], payload}))
                .isInstanceOfSatisfying(MalformedMessageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.BAD_SEQUENCE_FRAME));
        assertThatThrownBy(() -> WireFrames.replay(new byte[][] {new byte[1], seq, payload}))
                .isInstanceOfSatisfying(MalformedMessageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.BAD_DELIMITER));
        assertThatThrownBy(() -> WireFrames.replay(new byte[][] {new byte[0], payload}))
                .isInstanceOfSatisfying(MalformedMessageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.WRONG_FRAME_COUNT));
    }

    @Test
    void batchSequencesOfTwoToTheSixtyThirdOrMoreAreRejected() throws Exception {
        byte[] payload = Vectors.payload("04_map_all_blocks_cleared");
        byte[] topic = Vectors.TOPIC.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        for (long sequence : new long[] {Long.MIN_VALUE, -2, -1}) {
            assertThatThrownBy(() -> WireFrames.live(new byte[][] {topic, WireFrames.sequenceFrame(sequence), payload}))
                    .isInstanceOfSatisfying(MalformedMessageException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.BAD_SEQUENCE_FRAME))
                    .hasMessageContaining(Long.toUnsignedString(sequence));
            assertThatThrownBy(() -> WireFrames.replay(new byte[][] {new byte[0], topic,
                WireFrames.sequenceFrame(sequence), payload}))
                    .isInstanceOfSatisfying(MalformedMessageException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.BAD_SEQUENCE_FRAME));
        }
        assertThat(WireFrames.live(new byte[][] {topic, WireFrames.sequenceFrame(Long.MAX_VALUE), payload})
                .sequence()).isEqualTo(Long.MAX_VALUE);
        assertThat(WireFrames.replay(new byte[][] {new byte[0], topic, WireFrames.sequenceFrame(-1), new byte[0]})
                .isEnd()).isTrue();
    }

    @Test
    void olderReplayLayoutWithoutTopicParses() throws Exception {
        byte[] payload = Vectors.payload("08_array_all_blocks_cleared");
        WireFrames.ReplayMessage old = WireFrames.replay(new byte[][] {new byte[0], WireFrames.sequenceFrame(8),
            payload});
        assertThat(old.sequence()).isEqualTo(8);
        assertThat(old.topic()).isEmpty();
        assertThat(WireFrames.replay(new byte[][] {new byte[0], WireFrames.sequenceFrame(-1), new byte[0]}).isEnd())
                .isTrue();
        assertThat(WireFrames.sequence(hex("ffffffffffffffff"))).isEqualTo(WireFrames.END_OF_REPLAY);
    }

    private KvEventBatch decodeOrFail(byte[] payload) {
        try {
            return decoder.decode(payload);
        } catch (MalformedMessageException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    static byte[] hex(String hex) {
        return HexFormat.of().parseHex(hex);
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
