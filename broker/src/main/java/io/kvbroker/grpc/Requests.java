package io.kvbroker.grpc;

import io.kvbroker.proto.v1.HintRequest;
import io.kvbroker.proto.v1.LookupRequest;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.query.RequestException;
import io.kvbroker.query.ScoreQuery;
import java.util.List;
import java.util.function.IntToLongFunction;
import java.util.function.IntUnaryOperator;

/**
 * Checks requests field by field against the API's rules and the configured limits, and turns them into domain
 * values; every refusal names the field.
 */
final class Requests {
    private final QueryLimits limits;
    private final int granularity;

    Requests(QueryLimits limits, int granularity) {
        this.limits = limits;
        this.granularity = granularity;
    }

    ScoreQuery score(ScoreRequest request) {
        if (request.getModel().isEmpty()) {
            throw RequestException.invalid("model", "required: the served model name");
        }
        Prompt prompt = prompt(request.getTokenIdsCount(), request::getTokenIds, request.getContentKeysCount(),
                request::getContentKeys);
        int[] filter = null;
        if (request.getEngineIdsCount() > 0) {
            filter = new int[request.getEngineIdsCount()];
            for (int i = 0; i < filter.length; i++) {
                filter[i] = nonNegative("engine_ids", request.getEngineIds(i));
            }
        }
        return new ScoreQuery(request.getModel(), loraOrNull(request.getLoraName()), prompt.tokens, prompt.keys,
                filter, saturated(request.getTopK()), saturated(request.getMinTokens()));
    }

    /** A Lookup's keys; {@code hashes} tells which field they came from. */
    record Lookup(long[] keys, boolean hashes) {
    }

    Lookup lookup(LookupRequest request) {
        int keys = request.getContentKeysCount();
        int hashes = request.getBlockHashesCount();
        if (keys == 0 && hashes == 0) {
            throw RequestException.invalid("content_keys", "give content_keys or block_hashes (one of them)");
        }
        if (keys > 0 && hashes > 0) {
            throw RequestException.invalid("block_hashes", "give content_keys or block_hashes, not both");
        }
        String field = keys > 0 ? "content_keys" : "block_hashes";
        int count = Math.max(keys, hashes);
        if (count > limits.maxKeysPerLookup()) {
            throw RequestException.invalid(field, count + " keys, more than the limit of "
                    + limits.maxKeysPerLookup() + " (grpc.maxKeysPerLookup)");
        }
        return new Lookup(longs(keys > 0 ? request.getContentKeysList() : request.getBlockHashesList()), hashes > 0);
    }

    /** A validated Hint. */
    record Hint(int engineId, String model, String loraName, int[] tokens, long[] keys, long ttlMs) {
    }

    Hint hint(HintRequest request) {
        int engineId = nonNegative("engine_id", request.getEngineId());
        Prompt prompt = prompt(request.getTokenIdsCount(), request::getTokenIds, request.getContentKeysCount(),
                request::getContentKeys);
        if (prompt.tokens != null && request.getModel().isEmpty()) {
            throw RequestException.invalid("model", "required with token_ids: the keys are computed under it");
        }
        long ttl = Integer.toUnsignedLong(request.getTtlMs());
        if (ttl > limits.maxHintTtlMs()) {
            throw RequestException.invalid("ttl_ms", ttl + " ms is longer than the limit of " + limits.maxHintTtlMs()
                    + " (grpc.maxHintTtlMs)");
        }
        return new Hint(engineId, request.getModel(), loraOrNull(request.getLoraName()), prompt.tokens, prompt.keys,
                ttl == 0 ? limits.defaultHintTtlMs() : ttl);
    }

    /** A prompt as token ids or content keys, exactly one non-null. */
    private record Prompt(int[] tokens, long[] keys) {
    }

    /** Reads the repeated fields by index: no boxed Integer per token on the hot path. */
    private Prompt prompt(int tokenCount, IntUnaryOperator tokenId, int keyCount, IntToLongFunction contentKey) {
        if (tokenCount == 0 && keyCount == 0) {
            throw RequestException.invalid("token_ids", "give token_ids or content_keys (one of them)");
        }
        if (tokenCount > 0 && keyCount > 0) {
            throw RequestException.invalid("content_keys", "give token_ids or content_keys, not both");
        }
        if (tokenCount > 0) {
            if (tokenCount > limits.maxTokensPerQuery()) {
                throw RequestException.invalid("token_ids", tokenCount + " tokens, more than the limit of "
                        + limits.maxTokensPerQuery() + " (grpc.maxTokensPerQuery)");
            }
            int[] tokens = new int[tokenCount];
            for (int i = 0; i < tokens.length; i++) {
                int token = tokenId.applyAsInt(i);
                if (token < 0) {
                    throw RequestException.invalid("token_ids", "token id " + Integer.toUnsignedString(token)
                            + " at index " + i + " is above " + Integer.MAX_VALUE);
                }
                tokens[i] = token;
            }
            return new Prompt(tokens, null);
        }
        int maxKeys = limits.maxKeysPerQuery(granularity);
        if (keyCount > maxKeys) {
            throw RequestException.invalid("content_keys", keyCount + " keys, more than the limit of " + maxKeys
                    + " (grpc.maxTokensPerQuery / index.granularity)");
        }
        long[] keys = new long[keyCount];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = contentKey.applyAsLong(i);
        }
        return new Prompt(null, keys);
    }

    private static long[] longs(List<Long> values) {
        long[] array = new long[values.size()];
        for (int i = 0; i < array.length; i++) {
            array[i] = values.get(i);
        }
        return array;
    }

    /** A uint32 id that must fit an int. */
    private static int nonNegative(String field, int value) {
        if (value < 0) {
            throw RequestException.invalid(field, "engine id " + Integer.toUnsignedString(value) + " does not exist");
        }
        return value;
    }

    /** A uint32 count: anything above an int's range means "no bound" just as well. */
    private static int saturated(int value) {
        return value < 0 ? Integer.MAX_VALUE : value;
    }

    private static String loraOrNull(String loraName) {
        return loraName.isEmpty() ? null : loraName;
    }
}
