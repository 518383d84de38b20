package io.kvbroker.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.kvbroker.discovery.DnsService;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/** Parses {@code discovery.dns.services}: headless Services to resolve, each with the model and ports of its pods. */
final class DnsServicesParser implements Setting.Parser<List<DnsService>> {
    private static final Set<String> FIELDS = Set.of("host", "model", "port", "replayPort", "dataParallelSize",
            "topic");

    @Override
    public List<DnsService> parse(String key, JsonNode node) throws ConfigException {
        List<JsonNode> entries = ValueParsers.mapEntries(key, node, "services", "host and model", FIELDS);
        List<DnsService> services = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            String at = key + "[" + i + "]";
            JsonNode entry = entries.get(i);
            String host = ValueParsers.text(false).parse(at + ".host", orNull(entry, "host"));
            String model = ValueParsers.text(false).parse(at + ".model", orNull(entry, "model"));
            Setting.Parser<Integer> port = ValueParsers.intRange(1, 65_535);
            int pub = entry.has("port") ? port.parse(at + ".port", entry.get("port")) : 5557;
            Optional<Integer> replay = entry.hasNonNull("replayPort")
                    ? Optional.of(port.parse(at + ".replayPort", entry.get("replayPort"))) : Optional.empty();
            int ranks = entry.has("dataParallelSize") ? ValueParsers.intRange(1,
                    StaticEnginesParser.MAX_DATA_PARALLEL_SIZE).parse(at + ".dataParallelSize",
                    entry.get("dataParallelSize")) : 1;
            String topic = entry.hasNonNull("topic") ? entry.get("topic").asText() : "";
            if (pub + ranks - 1 > 65_535 || replay.map(r -> r + ranks - 1 > 65_535).orElse(false)) {
                throw new ConfigException(at + ".dataParallelSize", ranks + " ranks run past port 65535");
            }
            if (replay.isPresent() && replay.get() < pub + ranks && pub < replay.get() + ranks) {
                throw new ConfigException(at + ".replayPort", "replay ports " + replay.get() + ".."
                        + (replay.get() + ranks - 1) + " overlap the PUB ports " + pub + ".." + (pub + ranks - 1)
                        + "; vLLM adds the rank to both, so keep them at least dataParallelSize apart");
            }
            services.add(new DnsService(host, model, pub, replay, ranks, topic));
        }
        return List.copyOf(services);
    }

    private static JsonNode orNull(JsonNode entry, String field) {
        JsonNode value = entry.get(field);
        return value == null ? com.fasterxml.jackson.databind.node.NullNode.getInstance() : value;
    }
}
