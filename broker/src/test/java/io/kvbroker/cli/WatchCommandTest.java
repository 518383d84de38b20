package io.kvbroker.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.kvbroker.proto.v1.ChangeBatches;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EngineRemoved;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import io.kvbroker.proto.v1.WatchedEngine;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

/** The watch command's printer: a line per engine event, snapshot part and batch, as a table or JSON lines. */
class WatchCommandTest {
    private static final List<WatchResponse> STREAM = List.of(
            WatchResponse.newBuilder().setStarted(WatchStarted.newBuilder().setBrokerId("b1").setBrokerSequence(40)
                    .setGranularity(16).setWholeSnapshot(true).setEnginesSnapshotted(1)).build(),
            WatchResponse.newBuilder().setEngineAdded(WatchedEngine.newBuilder().setEngineId(2).setName("pod-a/0")
                    .setModel("llama")).build(),
            WatchResponse.newBuilder().setSnapshot(EngineSnapshot.newBuilder().setEngineId(2).setSequence(9)
                    .setBrokerSequence(39).setLastPart(true).addKeys(5).addSpans(1).addMedia(1)).build(),
            WatchResponse.newBuilder().setChanges(ChangeBatches.newBuilder()
                    .addBatches(EngineBatch.newBuilder().setEngineId(2).setBrokerSequence(41).setSequence(10)
                            .addKeys(6).addSpans(1).addMedia(1).setStoredBlocks(1))
                    .addBatches(EngineBatch.newBuilder().setEngineId(2).setBrokerSequence(42).setSequence(-1)
                            .setCleared(true))).build(),
            WatchResponse.newBuilder().setEngineRemoved(EngineRemoved.newBuilder().setEngineId(2)
                    .setName("pod-a/0")).build());

    private static String print(boolean json, long maxBatches, CountDownLatch done) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        WatchCommand.Printer printer = new WatchCommand.Printer(json, new PrintStream(bytes, true,
                StandardCharsets.UTF_8), maxBatches, done);
        STREAM.forEach(printer::onMessage);
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void printsATableLinePerEvent() {
        String[] lines = print(false, 0, new CountDownLatch(1)).split("\n");
        assertThat(lines).hasSize(7);
        assertThat(lines[0]).startsWith("EVENT").contains("BROKER SEQ");
        assertThat(lines[1]).startsWith("started").contains("broker b1", "granularity 16", "whole snapshot");
        assertThat(lines[2]).startsWith("added").contains("pod-a/0 (2)", "model llama");
        assertThat(lines[3]).startsWith("snapshot").contains("part 0 (last), 1 holdings");
        assertThat(lines[4]).startsWith("batch").contains("41", "1 holdings changed: 1 stored");
        assertThat(lines[5]).startsWith("batch").contains("cleared");
        assertThat(lines[6]).startsWith("removed").contains("pod-a/0");
    }

    @Test
    void printsJsonLinesAndEndsAfterEnoughBatches() throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        String[] lines = print(true, 2, done).split("\n");
        assertThat(lines).hasSize(6);
        JsonNode batch = ClientOptions.JSON.readTree(lines[3]);
        assertThat(batch.get("event").asText()).isEqualTo("batch");
        assertThat(batch.get("engine").asText()).isEqualTo("pod-a/0");
        assertThat(batch.get("broker_sequence").asLong()).isEqualTo(41);
        assertThat(ClientOptions.JSON.readTree(lines[0]).get("broker_id").asText()).isEqualTo("b1");
        assertThat(done.getCount()).isZero();
    }
}
