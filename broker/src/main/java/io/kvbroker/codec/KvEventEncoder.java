package io.kvbroker.codec;

import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Locale;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessagePack;

/**
 * Encodes batches the way vLLM's publisher does, in either event form: the engine simulator and the benchmarks speak
 * the wire contract through this class.
 *
 * <p>Design note: map form follows msgspec's {@code omit_defaults}: the fields vLLM declares without a default are
 * always written (nil when unset) and the newer defaulted ones (sliding window, locality, ownership, session) only
 * when set. Hashes are written as unsigned integers, {@code 0xcf} for values of 2^63 and above, as Python does.
 * Not thread-safe; the packer is reused between calls.
 */
public final class KvEventEncoder {

    /** The two event encodings found in the field. */
    public enum Form {
        /** vLLM up to 0.23.x: {@code [tag, field1, field2, ...]}. */
        ARRAY,
        /** vLLM 0.26 and later: a map whose first key is {@code "type"}. */
        MAP
    }

    private final MessageBufferPacker packer = MessagePack.newDefaultBufferPacker();
    private final byte[] uint64 = new byte[9];

    /** The payload frame for this batch. */
    public byte[] encode(KvEventBatch batch, Form form) {
        try {
            packer.clear();
            packer.packArrayHeader(3);
            packer.packDouble(batch.timestamp());
            packer.packArrayHeader(batch.events().size());
            for (KvEvent event : batch.events()) {
                if (form == Form.ARRAY) {
                    writeArrayEvent(event);
                } else {
                    writeMapEvent(event);
                }
            }
            if (batch.dataParallelRank() == KvEvent.ABSENT) {
                packer.packNil();
            } else {
                packer.packInt(batch.dataParallelRank());
            }
            return packer.toByteArray();
        } catch (IOException e) {
            // A buffer packer writes to memory only.
            throw new UncheckedIOException(e);
        }
    }

    private void writeArrayEvent(KvEvent event) throws IOException {
        if (event instanceof BlockStored s) {
            packer.packArrayHeader(12);
            packer.packString("BlockStored");
            writeHashes(s.blockHashes());
            writeParent(s);
            writeTokens(s.tokenIds());
            packer.packInt(s.blockSize());
            writeOptionalInt(s.loraId());
            writeMedium(s.medium());
            writeOptionalString(s.loraName());
            writeFree(s.extraKeys());
            writeOptionalInt(s.groupIdx());
            writeKind(s.kind());
            writeOptionalInt(s.slidingWindow());
        } else if (event instanceof BlockRemoved r) {
            packer.packArrayHeader(4);
            packer.packString("BlockRemoved");
            writeHashes(r.blockHashes());
            writeMedium(r.medium());
            writeOptionalInt(r.groupIdx());
        } else if (event instanceof AllBlocksCleared) {
            packer.packArrayHeader(1);
            packer.packString("AllBlocksCleared");
        }
    }

    private void writeMapEvent(KvEvent event) throws IOException {
        if (event instanceof BlockStored s) {
            int optional = (s.slidingWindow() != KvEvent.ABSENT ? 1 : 0) + (s.locality() != null ? 1 : 0)
                    + (s.ownership() != null ? 1 : 0) + (s.sessionId() != null ? 1 : 0);
            packer.packMapHeader(11 + optional);
            packer.packString("type").packString("BlockStored");
            packer.packString("block_hashes");
            writeHashes(s.blockHashes());
            packer.packString("parent_block_hash");
            writeParent(s);
            packer.packString("token_ids");
            writeTokens(s.tokenIds());
            packer.packString("block_size").packInt(s.blockSize());
            packer.packString("lora_id");
            writeOptionalInt(s.loraId());
            packer.packString("medium");
            writeMedium(s.medium());
            packer.packString("lora_name");
            writeOptionalString(s.loraName());
            packer.packString("extra_keys");
            writeFree(s.extraKeys());
            packer.packString("group_idx");
            writeOptionalInt(s.groupIdx());
            packer.packString("kv_cache_spec_kind");
            writeKind(s.kind());
            if (s.slidingWindow() != KvEvent.ABSENT) {
                packer.packString("kv_cache_spec_sliding_window").packInt(s.slidingWindow());
            }
            writeOptionalEntry("locality", s.locality());
            writeOptionalEntry("ownership", s.ownership());
            writeOptionalEntry("session_id", s.sessionId());
        } else if (event instanceof BlockRemoved r) {
            int optional = (r.groupIdx() != KvEvent.ABSENT ? 1 : 0) + (r.locality() != null ? 1 : 0)
                    + (r.ownership() != null ? 1 : 0);
            packer.packMapHeader(3 + optional);
            packer.packString("type").packString("BlockRemoved");
            packer.packString("block_hashes");
            writeHashes(r.blockHashes());
            packer.packString("medium");
            writeMedium(r.medium());
            if (r.groupIdx() != KvEvent.ABSENT) {
                packer.packString("group_idx").packInt(r.groupIdx());
            }
            writeOptionalEntry("locality", r.locality());
            writeOptionalEntry("ownership", r.ownership());
        } else if (event instanceof AllBlocksCleared) {
            packer.packMapHeader(1);
            packer.packString("type").packString("AllBlocksCleared");
        }
    }

    private void writeHashes(long[] hashes) throws IOException {
        packer.packArrayHeader(hashes.length);
        for (long hash : hashes) {
            writeHash(hash);
        }
    }

    private void writeHash(long hash) throws IOException {
        if (hash >= 0) {
            packer.packLong(hash);
            return;
        }
        uint64[0] = (byte) 0xcf;
        for (int i = 8; i >= 1; i--) {
            uint64[i] = (byte) hash;
            hash >>>= 8;
        }
        packer.writePayload(uint64, 0, 9);
    }

    private void writeParent(BlockStored s) throws IOException {
        if (s.hasParent()) {
            writeHash(s.parentHash());
        } else {
            packer.packNil();
        }
    }

    private void writeTokens(int[] tokens) throws IOException {
        packer.packArrayHeader(tokens.length);
        for (int token : tokens) {
            packer.packInt(token);
        }
    }

    private void writeOptionalInt(int value) throws IOException {
        if (value == KvEvent.ABSENT) {
            packer.packNil();
        } else {
            packer.packInt(value);
        }
    }

    private void writeOptionalString(String value) throws IOException {
        if (value == null) {
            packer.packNil();
        } else {
            packer.packString(value);
        }
    }

    private void writeOptionalEntry(String key, String value) throws IOException {
        if (value != null) {
            packer.packString(key).packString(value);
        }
    }

    private void writeMedium(Medium medium) throws IOException {
        writeOptionalString(medium == Medium.UNSPECIFIED ? null : medium.name());
    }

    private void writeKind(GroupKind kind) throws IOException {
        boolean absent = kind == GroupKind.UNSPECIFIED || kind == GroupKind.UNKNOWN;
        writeOptionalString(absent ? null : kind.name().toLowerCase(Locale.ROOT));
    }

    private void writeFree(Object value) throws IOException {
        if (value == null) {
            packer.packNil();
        } else if (value instanceof List<?> list) {
            packer.packArrayHeader(list.size());
            for (Object item : list) {
                writeFree(item);
            }
        } else if (value instanceof String text) {
            packer.packString(text);
        } else if (value instanceof Long number) {
            packer.packLong(number);
        } else if (value instanceof Integer number) {
            packer.packInt(number);
        } else if (value instanceof Double number) {
            packer.packDouble(number);
        } else if (value instanceof Boolean flag) {
            packer.packBoolean(flag);
        } else if (value instanceof byte[] bytes) {
            packer.packBinaryHeader(bytes.length);
            packer.writePayload(bytes);
        } else {
            throw new IllegalArgumentException("extra key of type " + value.getClass().getName());
        }
    }
}
