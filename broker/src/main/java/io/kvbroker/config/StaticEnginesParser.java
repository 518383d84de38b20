package io.kvbroker.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Parses {@code engines.static}: a list of engines, each expanded into one {@link EngineSpec} per data-parallel rank.
 *
 * <p>Design note: vLLM adds the rank to the port of both the PUB and the replay endpoint, so with replay base ports
 * too close to the PUB base ports two ranks would share a port. That is caught here, at start-up, naming both
 * entries, instead of surfacing later as two engines whose streams interleave.
 */
final class StaticEnginesParser implements Setting.Parser<List<EngineSpec>> {
    static final int MAX_DATA_PARALLEL_SIZE = 1024;
    private static final Set<String> FIELDS = Set.of("pod", "model", "endpoint", "replayEndpoint", "topic",
            "dataParallelSize");

    @Override
    public List<EngineSpec> parse(String key, JsonNode node) throws ConfigException {
        List<JsonNode> entries = ValueParsers.mapEntries(key, node, "engines", "pod, model and endpoint", FIELDS);
        List<EngineSpec> specs = new ArrayList<>();
        Map<EngineKey, String> keysSeen = new HashMap<>();
        Map<String, String> portsSeen = new HashMap<>();
        for (int i = 0; i < entries.size(); i++) {
            String at = key + "[" + i + "]";
            JsonNode entry = entries.get(i);
            String pod = required(entry, at, "pod");
            String model = required(entry, at, "model");
            Endpoint endpoint = endpoint(at + ".endpoint", required(entry, at, "endpoint"));
            Optional<Endpoint> replay = entry.hasNonNull("replayEndpoint")
                    ? Optional.of(endpoint(at + ".replayEndpoint", entry.get("replayEndpoint").asText()))
                    : Optional.empty();
            String topic = entry.hasNonNull("topic") ? entry.get("topic").asText() : "";
            int ranks = entry.has("dataParallelSize")
                    ? ValueParsers.intRange(1, MAX_DATA_PARALLEL_SIZE).parse(at + ".dataParallelSize",
                            entry.get("dataParallelSize"))
                    : 1;
            for (int rank = 0; rank < ranks; rank++) {
                String where = ranks > 1 ? at + " rank " + rank : at;
                EngineKey engineKey = new EngineKey(pod, rank);
                String earlier = keysSeen.putIfAbsent(engineKey, where);
                if (earlier != null) {
                    throw new ConfigException(at + ".pod", "engine " + engineKey + " is also defined by " + earlier);
                }
                Endpoint pub = offset(at + ".endpoint", endpoint, rank);
                Optional<Endpoint> rankReplay = replay.isPresent()
                        ? Optional.of(offset(at + ".replayEndpoint", replay.get(), rank)) : Optional.empty();
                claimPort(portsSeen, at + ".endpoint", pub, where + " endpoint");
                if (rankReplay.isPresent()) {
                    claimPort(portsSeen, at + ".replayEndpoint", rankReplay.get(), where + " replayEndpoint");
                }
                specs.add(new EngineSpec(engineKey, model, pub, rankReplay, topic));
            }
        }
        return List.copyOf(specs);
    }

    private static String required(JsonNode entry, String at, String field) throws ConfigException {
        JsonNode value = entry.get(field);
        if (value == null || value.isNull() || !value.isValueNode() || value.asText().isBlank()) {
            throw new ConfigException(at + "." + field, "is required");
        }
        return value.asText().strip();
    }

    private static Endpoint endpoint(String key, String address) throws ConfigException {
        try {
            return Endpoint.parse(address.strip());
        } catch (IllegalArgumentException e) {
            throw new ConfigException(key, e.getMessage());
        }
    }

    private static Endpoint offset(String key, Endpoint endpoint, int rank) throws ConfigException {
        try {
            return endpoint.plusPort(rank);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(key, e.getMessage());
        }
    }

    private static void claimPort(Map<String, String> seen, String key, Endpoint endpoint, String owner)
            throws ConfigException {
        String earlier = seen.putIfAbsent(endpoint.toString(), owner);
        if (earlier != null) {
            throw new ConfigException(key, endpoint + " (" + owner + ") is also " + earlier
                    + "; with data parallelism keep the replay base port at least dataParallelSize above the"
                    + " endpoint's");
        }
    }
}
