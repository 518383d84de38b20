package io.kvbroker.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Asks a running broker which engines hold the cached prefix of a prompt. */
@Command(name = "score", mixinStandardHelpOptions = true,
        description = "Score a prompt on a running broker: per engine, the cached prefix on GPU and offloaded.")
final class ScoreCommand implements Callable<Integer> {
    @Mixin
    ClientOptions client;

    @Mixin
    PromptOptions prompt;

    @Option(names = "--engine", paramLabel = "ID", split = ",", description = "Score only these engine ids.")
    List<Integer> engines = new ArrayList<>();

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "10",
            description = "Most engines to show, best first; 0 for all (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--min-tokens", paramLabel = "N", defaultValue = "0",
            description = "Leave out engines matching fewer tokens (default: ${DEFAULT-VALUE}).")
    int minTokens;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        ScoreRequest request = ScoreRequest.newBuilder().setModel(prompt.model).setLoraName(prompt.lora)
                .addAllTokenIds(prompt.tokenIds(spec.commandLine())).addAllContentKeys(prompt.contentKeys())
                .addAllEngineIds(engines).setTopK(topK).setMinTokens(minTokens).build();
        return ClientOptions.run(() -> {
            try (KvIndexClient kv = client.client()) {
                ScoreResponse response = kv.score(request);
                print(response, EnginesCommand.names(kv.listEngines()), client.json(), System.out);
            }
            return 0;
        });
    }

    /** Prints a Score's rows and pending hints as a table or as one JSON document. */
    static void print(ScoreResponse response, Map<Integer, String> names, boolean json, PrintStream out)
            throws Exception {
        if (json) {
            ObjectNode root = ClientOptions.JSON.createObjectNode();
            root.put("granularity", response.getGranularity()).put("scored_chunks", response.getScoredChunks());
            ArrayNode rows = root.putArray("engines");
            for (int i = 0; i < response.getEngineIdsCount(); i++) {
                int id = response.getEngineIds(i);
                rows.addObject().put("engine_id", id).put("engine", names.getOrDefault(id, ""))
                        .put("state", EnginesCommand.state(response.getStates(i)))
                        .put("gpu_blocks", response.getGpuBlocks(i)).put("offload_blocks", response.getOffloadBlocks(i))
                        .put("gpu_tokens", response.getGpuTokens(i)).put("offload_tokens", response.getOffloadTokens(i))
                        .put("score", response.getScores(i)).put("applied_sequence", response.getAppliedSequences(i))
                        .put("lag_batches", response.getLagBatches(i));
            }
            ArrayNode pending = root.putArray("pending");
            for (int i = 0; i < response.getPendingEngineIdsCount(); i++) {
                int id = response.getPendingEngineIds(i);
                pending.addObject().put("engine_id", id).put("engine", names.getOrDefault(id, ""))
                        .put("pending_blocks", response.getPendingBlocks(i))
                        .put("pending_tokens", response.getPendingTokens(i));
            }
            out.println(ClientOptions.JSON.writeValueAsString(root));
            return;
        }
        out.printf(Locale.ROOT, "%d chunks of %d tokens scored; %d engine(s) hold a prefix%n",
                response.getScoredChunks(), response.getGranularity(), response.getEngineIdsCount());
        Table table = new Table("ID", "ENGINE", "STATE", "GPU TOKENS", "OFFLOADED TOKENS", "SCORE", "SEQUENCE", "LAG");
        for (int i = 0; i < response.getEngineIdsCount(); i++) {
            int id = response.getEngineIds(i);
            table.row(id, names.getOrDefault(id, "?"), EnginesCommand.state(response.getStates(i)),
                    response.getGpuTokens(i), response.getOffloadTokens(i),
                    String.format(Locale.ROOT, "%.1f", response.getScores(i)), response.getAppliedSequences(i),
                    response.getLagBatches(i));
        }
        if (!table.isEmpty()) {
            table.print(out);
        }
        if (response.getPendingEngineIdsCount() > 0) {
            out.println("pending (hinted, not yet confirmed):");
            Table pending = new Table("ID", "ENGINE", "PENDING TOKENS");
            for (int i = 0; i < response.getPendingEngineIdsCount(); i++) {
                int id = response.getPendingEngineIds(i);
                pending.row(id, names.getOrDefault(id, "?"), response.getPendingTokens(i));
            }
            pending.print(out);
        }
    }
}
