package io.kvbroker.query;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;

/**
 * The bounds on what one query may ask and on the hints the broker keeps, from the {@code grpc.*} settings.
 *
 * @param maxTokensPerQuery most token ids in a Score or Hint (content keys: this divided by the granularity)
 * @param maxKeysPerLookup most content keys or block hashes in a Lookup
 * @param maxHintsPerEngine most hinted chunks pending on one engine
 * @param defaultHintTtlMs time to live of a hint that gives none
 * @param maxHintTtlMs longest time to live a hint may ask for
 */
public record QueryLimits(int maxTokensPerQuery, int maxKeysPerLookup, int maxHintsPerEngine, int defaultHintTtlMs,
        int maxHintTtlMs) {

    public static QueryLimits from(BrokerConfig config) {
        return new QueryLimits(config.get(Settings.GRPC_MAX_TOKENS_PER_QUERY),
                config.get(Settings.GRPC_MAX_KEYS_PER_LOOKUP), config.get(Settings.GRPC_MAX_HINTS_PER_ENGINE),
                config.get(Settings.GRPC_DEFAULT_HINT_TTL_MS), config.get(Settings.GRPC_MAX_HINT_TTL_MS));
    }

    /** The most content keys a Score or Hint may carry: a prompt of {@link #maxTokensPerQuery} in chunks. */
    public int maxKeysPerQuery(int granularity) {
        return Math.max(1, maxTokensPerQuery / granularity);
    }
}
