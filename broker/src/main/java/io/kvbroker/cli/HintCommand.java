package io.kvbroker.cli;

import io.kvbroker.client.KvIndexClient;
import io.kvbroker.proto.v1.HintRequest;
import io.kvbroker.proto.v1.HintResponse;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Records a routing decision on a running broker: the prompt's chunks count as pending on the engine. */
@Command(name = "hint", mixinStandardHelpOptions = true,
        description = "Tell a running broker a prompt was routed to an engine: Score reports its chunks as pending "
                + "there until the engine holds them or the ttl passes.")
final class HintCommand implements Callable<Integer> {
    @Mixin
    ClientOptions client;

    @Mixin
    PromptOptions prompt;

    @Option(names = "--engine", paramLabel = "ID", required = true, description = "The engine id routed to.")
    int engine;

    @Option(names = "--ttl-ms", paramLabel = "MS", defaultValue = "0",
            description = "How long the hint holds unconfirmed; 0 for the broker's grpc.defaultHintTtlMs.")
    int ttlMs;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        HintRequest request = HintRequest.newBuilder().setEngineId(engine).setModel(prompt.model)
                .setLoraName(prompt.lora).addAllTokenIds(prompt.tokenIds(spec.commandLine()))
                .addAllContentKeys(prompt.contentKeys()).setTtlMs(ttlMs).build();
        return ClientOptions.run(() -> {
            HintResponse response;
            try (KvIndexClient kv = client.client()) {
                response = kv.hint(request);
            }
            if (client.json()) {
                System.out.println(ClientOptions.JSON.writeValueAsString(ClientOptions.JSON.createObjectNode()
                        .put("recorded_blocks", response.getRecordedBlocks())
                        .put("engine_pending_blocks", response.getEnginePendingBlocks())
                        .put("ttl_ms", response.getTtlMs())));
            } else {
                System.out.printf("%d chunks pending on engine %d for %d ms (%d pending there in all)%n",
                        response.getRecordedBlocks(), engine, response.getTtlMs(), response.getEnginePendingBlocks());
            }
            return 0;
        });
    }
}
