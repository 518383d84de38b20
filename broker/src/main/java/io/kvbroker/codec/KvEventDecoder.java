package io.kvbroker.codec;

import io.kvbroker.codec.MalformedMessageException.Reason;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes one msgpack batch payload of vLLM's KV events into a {@link KvEventBatch}, exactly as
 * {@code docs/vllm-wire.md} describes it: array-form and map-form events, any integer width, {@code bin} hashes.
 *
 * <p>Design note: both event encodings feed one field reader per event type (array position and map key both map
 * to a field number), so the two forms cannot drift apart. Fields are collected in reusable scratch slots and only
 * the event record and its arrays are allocated. Unknown event types and unknown keys are skipped and counted in the
 * batch; anything else wrong fails the whole batch with a {@link MalformedMessageException}, because applying half
 * of a batch would make the engine's history inexact. Not thread-safe: one decoder per ingest thread.
 */
public final class KvEventDecoder {

    private static final byte[][] TAGS = names("BlockStored", "BlockRemoved", "AllBlocksCleared");
    private static final int TAG_STORED = 0;
    private static final int TAG_REMOVED = 1;
    private static final int TAG_CLEARED = 2;
    private static final byte[][] TYPE_KEY = names("type");

    /** BlockStored fields in declaration order: array position i + 1 is field i. */
    private static final String[] STORED_FIELDS = {"block_hashes", "parent_block_hash", "token_ids", "block_size",
        "lora_id", "medium", "lora_name", "extra_keys", "group_idx", "kv_cache_spec_kind",
        "kv_cache_spec_sliding_window", "locality", "ownership", "session_id"};
    private static final byte[][] STORED_NAMES = names(STORED_FIELDS);
    private static final String[] REMOVED_FIELDS = {"block_hashes", "medium", "group_idx", "locality", "ownership"};
    private static final byte[][] REMOVED_NAMES = names(REMOVED_FIELDS);
    // Names compared as bytes on the hot path; their meaning comes from the enums' own wire-name mapping.
    private static final String[] MEDIUM_NAMES = {"GPU", "CPU", "STORAGE", "FS", "OBJ"};
    private static final byte[][] MEDIA = names(MEDIUM_NAMES);
    private static final Medium[] MEDIA_VALUES = java.util.Arrays.stream(MEDIUM_NAMES).map(Medium::fromWireName)
            .toArray(Medium[]::new);
    private static final String[] KIND_NAMES = {"full_attention", "mla_attention", "sliding_window", "mamba"};
    private static final byte[][] KINDS = names(KIND_NAMES);
    private static final GroupKind[] KIND_VALUES = java.util.Arrays.stream(KIND_NAMES).map(GroupKind::fromWireName)
            .toArray(GroupKind[]::new);
    private static final long[] NO_HASHES = new long[0];
    private static final int[] NO_TOKENS = new int[0];

    private final WireReader in = new WireReader();

    // Where the decoder is, for error messages (no allocation until an error is raised).
    private int eventIndex;
    private String field;

    // Scratch slots for the event being decoded; reset per event.
    private long[] hashes;
    private boolean hasParent;
    private long parentHash;
    private int[] tokens;
    private int blockSize;
    private int loraId;
    private Medium medium;
    private String loraName;
    private List<Object> extraKeys;
    private int groupIdx;
    private GroupKind kind;
    private int slidingWindow;
    private String locality;
    private String ownership;
    private String sessionId;
    private int skippedFields;

    /** Decodes a whole frame; group kinds learned from its stores are not kept. */
    public KvEventBatch decode(byte[] payload) throws MalformedMessageException {
        return decode(payload, 0, payload.length, new GroupKinds());
    }

    /**
     * Decodes {@code length} bytes of {@code frame} from {@code offset}, without copying them.
     *
     * @param kinds the engine's group kinds: stores teach it, removals are classified by it
     * @throws MalformedMessageException for anything the contract does not allow; nothing else is thrown for any input
     */
    public KvEventBatch decode(byte[] frame, int offset, int length, GroupKinds kinds)
            throws MalformedMessageException {
        eventIndex = -1;
        field = "batch";
        skippedFields = 0;
        try {
            in.reset(frame, offset, length);
            KvEventBatch batch = readBatch(kinds);
            if (in.remaining() != 0) {
                throw new MalformedMessageException(Reason.TRAILING_BYTES,
                        in.remaining() + " bytes follow the batch");
            }
            return batch;
        } catch (MalformedMessageException e) {
            throw withContext(e.reason(), e.getMessage().substring(e.reason().label().length() + 2));
        } catch (RuntimeException e) {
            // Defensive: no input may escape as anything but a typed error. The reader checks every bound, so this
            // would be a bug; the fuzz tests fail on this reason.
            throw withContext(Reason.UNDECODABLE, e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    private KvEventBatch readBatch(GroupKinds kinds) throws MalformedMessageException {
        if (!in.isArray()) {
            throw new MalformedMessageException(Reason.BAD_BATCH_SHAPE, "a batch must be an array");
        }
        int elements = in.arrayHeader();
        if (elements < 2) {
            throw new MalformedMessageException(Reason.BAD_BATCH_SHAPE,
                    "a batch has [ts, events] or [ts, events, rank], found " + elements + " elements");
        }
        field = "ts";
        double timestamp = in.number();
        field = "events";
        int count = in.arrayHeader();
        List<KvEvent> events = new ArrayList<>(count);
        int skippedEvents = 0;
        for (eventIndex = 0; eventIndex < count; eventIndex++) {
            KvEvent event = readEvent(kinds);
            if (event == null) {
                skippedEvents++;
            } else {
                events.add(event);
            }
        }
        eventIndex = -1;
        int rank = KvEvent.ABSENT;
        if (elements >= 3) {
            field = "data_parallel_rank";
            rank = in.tryNil() ? KvEvent.ABSENT : in.nonNegativeInt();
        }
        field = "batch";
        for (int i = 3; i < elements; i++) {
            in.skip();
            skippedFields++;
        }
        return new KvEventBatch(timestamp, rank, events, skippedEvents, skippedFields);
    }

    /** One event, or null when its type is unknown (it is skipped whole). */
    private KvEvent readEvent(GroupKinds kinds) throws MalformedMessageException {
        field = "event";
        if (in.isArray()) {
            int size = in.arrayHeader();
            if (size == 0) {
                return null;
            }
            field = "type";
            int tag = in.matchName(TAGS, true);
            if (tag < 0) {
                skipValues(size - 1);
                return null;
            }
            resetScratch();
            String[] fieldNames = tag == TAG_STORED ? STORED_FIELDS : REMOVED_FIELDS;
            for (int position = 0; position < size - 1; position++) {
                if (tag == TAG_CLEARED || position >= fieldNames.length || !isArrayField(tag, position)) {
                    field = "event";
                    in.skip();
                    skippedFields++;
                } else {
                    readField(tag, position);
                }
            }
            return finish(tag, kinds);
        }
        if (in.isMap()) {
            int entries = in.mapHeader();
            if (entries == 0) {
                return null;
            }
            field = "type";
            if (in.matchName(TYPE_KEY, true) != 0) {
                // A map event without its tag first cannot be typed: skip it whole, as an unknown type.
                in.skip();
                skipValues(2 * (entries - 1));
                return null;
            }
            int tag = in.matchName(TAGS, true);
            if (tag < 0) {
                skipValues(2 * (entries - 1));
                return null;
            }
            resetScratch();
            byte[][] keys = tag == TAG_STORED ? STORED_NAMES : tag == TAG_REMOVED ? REMOVED_NAMES : new byte[0][];
            int likely = 0;
            for (int i = 1; i < entries; i++) {
                field = "key";
                int id = in.matchName(keys, true, likely);
                if (id >= 0) {
                    likely = id + 1;
                }
                if (id < 0) {
                    field = "event";
                    in.skip();
                    skippedFields++;
                } else {
                    readField(tag, id);
                }
            }
            return finish(tag, kinds);
        }
        throw in.wrongType("event (array or map)");
    }

    /** Array-form BlockStored ends at the sliding window; the fields after it exist in map form only. */
    private static boolean isArrayField(int tag, int position) {
        return tag == TAG_STORED ? position <= 10 : position <= 2;
    }

    private void readField(int tag, int id) throws MalformedMessageException {
        if (tag == TAG_STORED) {
            field = STORED_FIELDS[id];
            switch (id) {
                case 0 -> hashes = readHashes();
                case 1 -> {
                    hasParent = !in.tryNil();
                    parentHash = hasParent ? in.hash() : 0L;
                }
                case 2 -> tokens = readTokens();
                case 3 -> blockSize = in.tryNil() ? 0 : in.nonNegativeInt();
                case 4 -> loraId = in.tryNil() ? KvEvent.ABSENT : in.nonNegativeInt();
                case 5 -> medium = readMedium();
                case 6 -> loraName = in.stringOrNull();
                case 7 -> extraKeys = readExtraKeys();
                case 8 -> groupIdx = in.tryNil() ? KvEvent.ABSENT : in.nonNegativeInt();
                case 9 -> kind = readKind();
                case 10 -> slidingWindow = in.tryNil() ? KvEvent.ABSENT : in.nonNegativeInt();
                case 11 -> locality = in.stringOrNull();
                case 12 -> ownership = in.stringOrNull();
                default -> sessionId = in.stringOrNull();
            }
        } else {
            field = REMOVED_FIELDS[id];
            switch (id) {
                case 0 -> hashes = readHashes();
                case 1 -> medium = readMedium();
                case 2 -> groupIdx = in.tryNil() ? KvEvent.ABSENT : in.nonNegativeInt();
                case 3 -> locality = in.stringOrNull();
                default -> ownership = in.stringOrNull();
            }
        }
    }

    private KvEvent finish(int tag, GroupKinds kinds) throws MalformedMessageException {
        if (tag == TAG_CLEARED) {
            return AllBlocksCleared.ALL;
        }
        if (hashes == null) {
            field = "block_hashes";
            throw new MalformedMessageException(Reason.MISSING_FIELD, "block_hashes is required");
        }
        if (tag == TAG_REMOVED) {
            return new BlockRemoved(hashes, medium, groupIdx, kinds.kindOf(groupIdx), locality, ownership);
        }
        if (kind == GroupKind.UNSPECIFIED) {
            GroupKind taught = kinds.kindOf(groupIdx);
            if (taught != GroupKind.UNKNOWN) {
                kind = taught;
            }
        }
        kinds.learn(groupIdx, kind);
        return new BlockStored(hashes, hasParent, parentHash, tokens == null ? NO_TOKENS : tokens, blockSize, loraId,
                medium, loraName, extraKeys, groupIdx, kind, slidingWindow, locality, ownership, sessionId);
    }

    private long[] readHashes() throws MalformedMessageException {
        if (in.tryNil()) {
            return null;
        }
        int count = in.arrayHeader();
        if (count == 0) {
            return NO_HASHES;
        }
        long[] values = new long[count];
        for (int i = 0; i < count; i++) {
            values[i] = in.hash();
        }
        return values;
    }

    private int[] readTokens() throws MalformedMessageException {
        if (in.tryNil()) {
            return NO_TOKENS;
        }
        int count = in.arrayHeader();
        if (count == 0) {
            return NO_TOKENS;
        }
        int[] values = new int[count];
        in.intArray(values);
        return values;
    }

    private Medium readMedium() throws MalformedMessageException {
        if (in.tryNil()) {
            return Medium.UNSPECIFIED;
        }
        int index = in.matchName(MEDIA, false);
        return index < 0 ? Medium.OTHER : MEDIA_VALUES[index];
    }

    private GroupKind readKind() throws MalformedMessageException {
        if (in.tryNil()) {
            return GroupKind.UNSPECIFIED;
        }
        int index = in.matchName(KINDS, false);
        return index < 0 ? GroupKind.OTHER : KIND_VALUES[index];
    }

    /** Null, or one entry per block: null or an unmodifiable list of free-form values. */
    private List<Object> readExtraKeys() throws MalformedMessageException {
        if (in.tryNil()) {
            return null;
        }
        int count = in.arrayHeader();
        List<Object> perBlock = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            if (in.tryNil()) {
                perBlock.add(null);
            } else if (in.isArray()) {
                perBlock.add(in.freeValue(1));
            } else {
                throw in.wrongType("nil or array of extra keys");
            }
        }
        return java.util.Collections.unmodifiableList(perBlock);
    }

    private void skipValues(int count) throws MalformedMessageException {
        for (int i = 0; i < count; i++) {
            in.skip();
        }
        field = "event";
    }

    private void resetScratch() {
        hashes = null;
        hasParent = false;
        parentHash = 0L;
        tokens = null;
        blockSize = 0;
        loraId = KvEvent.ABSENT;
        medium = Medium.UNSPECIFIED;
        loraName = null;
        extraKeys = null;
        groupIdx = KvEvent.ABSENT;
        kind = GroupKind.UNSPECIFIED;
        slidingWindow = KvEvent.ABSENT;
        locality = null;
        ownership = null;
        sessionId = null;
    }

    private MalformedMessageException withContext(Reason reason, String detail) {
        String where = eventIndex >= 0 ? "event " + eventIndex + ", " + field : field;
        return new MalformedMessageException(reason, where + ": " + detail);
    }

    private static byte[][] names(String... values) {
        byte[][] bytes = new byte[values.length][];
        for (int i = 0; i < values.length; i++) {
            bytes[i] = values[i].getBytes(StandardCharsets.UTF_8);
        }
        return bytes;
    }
}
