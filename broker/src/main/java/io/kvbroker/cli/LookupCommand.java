package io.kvbroker.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.proto.v1.LookupRequest;
import io.kvbroker.proto.v1.LookupResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** Asks a running broker which engines hold given blocks, by content key or by engine block hash. */
@Command(name = "lookup", mixinStandardHelpOptions = true,
        description = "Look up blocks on a running broker: the engines holding each, and on which media.")
final class LookupCommand implements Callable<Integer> {
    @Mixin
    ClientOptions client;

    @Option(names = "--keys", paramLabel = "KEYS", split = ",",
            description = "Content keys, comma-separated (decimal, or hex with 0x).")
    List<String> keys = new ArrayList<>();

    @Option(names = "--hashes", paramLabel = "HASHES", split = ",",
            description = "Engine block hashes instead, comma-separated (decimal, or hex with 0x).")
    List<String> hashes = new ArrayList<>();

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        LookupRequest.Builder request = LookupRequest.newBuilder();
        List<String> asked = keys.isEmpty() ? hashes : keys;
        try {
            for (String key : keys) {
                request.addContentKeys(PromptOptions.parseKey(key));
            }
            for (String hash : hashes) {
                request.addBlockHashes(PromptOptions.parseKey(hash));
            }
        } catch (NumberFormatException e) {
            throw new ParameterException(spec.commandLine(), "not a 64-bit key: " + e.getMessage());
        }
        return ClientOptions.run(() -> {
            LookupResponse response;
            Map<Integer, String> names;
            try (KvIndexClient kv = client.client()) {
                response = kv.lookup(request.build());
                names = EnginesCommand.names(kv.listEngines());
            }
            ArrayNode json = ClientOptions.JSON.createArrayNode();
            Table table = new Table(keys.isEmpty() ? "HASH" : "KEY", "HOLDERS");
            int next = 0;
            for (int k = 0; k < response.getHolderCountsCount(); k++) {
                ArrayNode holders = json.addObject().put("key", PromptOptions.formatKey(
                        PromptOptions.parseKey(asked.get(k)))).putArray("holders");
                StringBuilder text = new StringBuilder();
                for (int h = 0; h < response.getHolderCounts(k); h++, next++) {
                    int id = response.getEngineIds(next);
                    String media = media(response.getMedia(next));
                    holders.addObject().put("engine_id", id).put("engine", names.getOrDefault(id, ""))
                            .put("media", media);
                    text.append(text.length() == 0 ? "" : ", ").append(names.getOrDefault(id, "#" + id)).append(" (")
                            .append(media).append(')');
                }
                table.row(PromptOptions.formatKey(PromptOptions.parseKey(asked.get(k))),
                        text.length() == 0 ? "none" : text);
            }
            if (client.json()) {
                System.out.println(ClientOptions.JSON.writeValueAsString(json));
            } else {
                table.print(System.out);
            }
            return 0;
        });
    }

    /** A media bit mask as names: {@code 3} is {@code gpu+cpu}. */
    static String media(int mask) {
        List<String> names = new ArrayList<>();
        String[] all = {"gpu", "cpu", "storage", "other"};
        for (int bit = 0; bit < all.length; bit++) {
            if ((mask & (1 << bit)) != 0) {
                names.add(all[bit]);
            }
        }
        return String.join("+", names);
    }
}
