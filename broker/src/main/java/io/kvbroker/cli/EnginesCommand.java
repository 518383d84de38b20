package io.kvbroker.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.proto.v1.EngineInfo;
import io.kvbroker.proto.v1.EngineState;
import io.kvbroker.proto.v1.ListEnginesRequest;
import io.kvbroker.proto.v1.ListEnginesResponse;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Lists a running broker's engines: identity, state, lag, residencies, fault counters. */
@Command(name = "engines", mixinStandardHelpOptions = true,
        description = "List a running broker's engines with state, lag, blocks by medium and fault counters.")
final class EnginesCommand implements Callable<Integer> {
    @Mixin
    ClientOptions client;

    @Option(names = "--removed", description = "Also list the engines removed since the broker started.")
    boolean removed;

    @Override
    public Integer call() throws Exception {
        return ClientOptions.run(() -> {
            ListEnginesResponse response;
            try (KvIndexClient kv = client.client()) {
                response = kv.listEngines(ListEnginesRequest.newBuilder().setIncludeRemoved(removed).build());
            }
            if (client.json()) {
                ObjectNode root = ClientOptions.JSON.createObjectNode().put("granularity", response.getGranularity());
                ArrayNode engines = root.putArray("engines");
                for (EngineInfo e : response.getEnginesList()) {
                    ObjectNode node = engines.addObject().put("engine_id", e.getEngineId()).put("pod", e.getPod())
                            .put("rank", e.getRank()).put("model", e.getModel()).put("endpoint", e.getEndpoint())
                            .put("state", state(e.getState())).put("incarnation", e.getIncarnation())
                            .put("applied_sequence", e.getAppliedSequence())
                            .put("last_heard_sequence", e.getLastHeardSequence()).put("lag_batches", e.getLagBatches())
                            .put("ms_since_last_heard", e.getMsSinceLastHeard()).put("blocks", e.getBlocks())
                            .put("gpu_blocks", e.getGpuBlocks()).put("cpu_blocks", e.getCpuBlocks())
                            .put("storage_blocks", e.getStorageBlocks()).put("other_blocks", e.getOtherBlocks())
                            .put("gaps", e.getGaps()).put("replays", e.getReplays()).put("voids", e.getVoids())
                            .put("restarts", e.getRestarts()).put("decode_errors", e.getDecodeErrors())
                            .put("batches", e.getBatches()).put("block_events", e.getBlockEvents())
                            .put("topic", e.getTopic()).put("topic_seen", e.getTopicSeen())
                            .put("topic_mismatches", e.getTopicMismatches())
                            .put("replay_endpoint", e.getReplayEndpoint())
                            .put("history_partial", e.getHistoryPartial())
                            .put("unknown_history_batches", e.getUnknownHistoryBatches())
                            .put("connections", e.getConnections());
                    ObjectNode reasons = node.putObject("decode_errors_by_reason");
                    e.getDecodeErrorsByReasonMap().forEach(reasons::put);
                }
                System.out.println(ClientOptions.JSON.writeValueAsString(root));
                return 0;
            }
            Table table = new Table("ID", "ENGINE", "MODEL", "STATE", "SEQUENCE", "LAG", "HEARD", "BLOCKS", "GPU",
                    "CPU", "STORAGE", "GAPS", "REPLAYS", "VOIDS", "RESTARTS", "DECODE ERRORS", "HISTORY", "NOTE");
            for (EngineInfo e : response.getEnginesList()) {
                table.row(e.getEngineId(), e.getPod() + "/" + e.getRank(), e.getModel(), state(e.getState()),
                        e.getAppliedSequence(), e.getLagBatches(),
                        String.format(Locale.ROOT, "%.1fs ago", e.getMsSinceLastHeard() / 1000.0), e.getBlocks(),
                        e.getGpuBlocks(), e.getCpuBlocks(), e.getStorageBlocks(), e.getGaps(), e.getReplays(),
                        e.getVoids(), e.getRestarts(), e.getDecodeErrors(), e.getHistoryPartial() ? "partial" : "whole",
                        note(e));
            }
            table.print(System.out);
            return 0;
        });
    }

    /** What an operator should look at first for this engine, or "-". */
    private static String note(EngineInfo e) {
        if (e.getTopicMismatches() > 0 && !e.getTopicSeen().isEmpty()) {
            return "topic '" + e.getTopicSeen() + "' is not the configured '" + e.getTopic() + "'";
        }
        if (e.getReplayEndpoint().isEmpty()) {
            return "no replay endpoint";
        }
        return "-";
    }

    /** Engine ids to {@code pod/rank}, for naming engines in other answers. */
    static Map<Integer, String> names(ListEnginesResponse engines) {
        Map<Integer, String> names = new HashMap<>();
        for (EngineInfo e : engines.getEnginesList()) {
            names.put(e.getEngineId(), e.getPod() + "/" + e.getRank());
        }
        return names;
    }

    /** The state's short name: {@code ENGINE_STATE_CATCHING_UP} is {@code catching_up}. */
    static String state(EngineState state) {
        return state.name().replace("ENGINE_STATE_", "").toLowerCase(Locale.ROOT);
    }
}
