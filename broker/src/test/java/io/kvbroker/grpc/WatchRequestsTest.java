package io.kvbroker.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import io.kvbroker.client.WatchPositions;
import io.kvbroker.proto.v1.ChangeBatches;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EnginePosition;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import io.kvbroker.proto.v1.WatchedEngine;
import io.kvbroker.query.RequestException;
import io.kvbroker.watch.ResumePoint;
import io.kvbroker.watch.WatchQuery;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Resume tokens as clients keep them (the API's {@code ResumeToken} bytes) read into the watch package's terms. */
class WatchRequestsTest {
    @Test
    void readsATokenWrittenByteByByteToTheApisFormat() {
        // broker_id "b1"; p/0 at incarnation 2, sequence 7, fingerprint 0x0102030405060708, broker sequence 300;
        // q/1 reset (sequence -1) at incarnation 1, broker sequence 5. Pins the wire format tokens already out use.
        byte[] token = {
            0x0A, 0x02, 'b', '1',
            0x12, 0x15, 0x0A, 0x03, 'p', '/', '0', 0x10, 0x02, 0x18, 0x0E,
            0x21, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x28, (byte) 0xAC, 0x02,
            0x12, 0x0B, 0x0A, 0x03, 'q', '/', '1', 0x10, 0x01, 0x18, 0x01, 0x28, 0x05};

        assertThat(WatchRequests.resumePoint(ByteString.copyFrom(token))).isEqualTo(new ResumePoint("b1", List.of(
                new ResumePoint.EnginePosition("p/0", 2, 7, 0x0102030405060708L, 300),
                new ResumePoint.EnginePosition("q/1", 1, -1, 0, 5))));
    }

    @Test
    void readsTheTokenTheClientLibraryKeeps() {
        WatchPositions positions = new WatchPositions();
        positions.onMessage(WatchResponse.newBuilder().setStarted(WatchStarted.newBuilder().setBrokerId("b7")
                .setBrokerSequence(40)).build());
        positions.onMessage(WatchResponse.newBuilder().setEngineAdded(WatchedEngine.newBuilder().setEngineId(3)
                .setName("pod/1").setModel("m")).build());
        positions.onMessage(WatchResponse.newBuilder().setChanges(ChangeBatches.newBuilder().addBatches(
                EngineBatch.newBuilder().setEngineId(3).setIncarnation(4).setSequence(11).setFingerprint(-5)
                        .setBrokerSequence(41))).build());

        WatchQuery query = WatchRequests.query(WatchRequest.newBuilder()
                .setResumeToken(ByteString.copyFrom(positions.token())).addModels("m").addEngines("pod/1").build());

        assertThat(query).isEqualTo(new WatchQuery(new ResumePoint("b7", List.of(
                new ResumePoint.EnginePosition("pod/1", 4, 11, -5, 41))), List.of("m"), List.of("pod/1")));
    }

    @Test
    void noTokenMeansAWholeSnapshot() {
        assertThat(WatchRequests.query(WatchRequest.getDefaultInstance()).resumeFrom()).isNull();
    }

    @Test
    void anUnreadableTokenIsRefusedNamingTheField() {
        assertRefused(ByteString.copyFromUtf8("garbage!"), "resume_token: not a resume token");
        assertRefused(ResumeToken.newBuilder().addEngines(EnginePosition.newBuilder().setEngine("p/0")).build()
                .toByteString(), "resume_token: has no broker_id");
        assertRefused(ResumeToken.newBuilder().setBrokerId("b").addEngines(EnginePosition.newBuilder()
                .setEngine("p/0")).addEngines(EnginePosition.newBuilder()).build().toByteString(),
                "resume_token: position 1 names no engine");
    }

    private static void assertRefused(ByteString token, String message) {
        assertThatThrownBy(() -> WatchRequests.resumePoint(token)).isInstanceOfSatisfying(RequestException.class,
                e -> {
                    assertThat(e.kind()).isEqualTo(RequestException.Kind.INVALID);
                    assertThat(e.getMessage()).startsWith(message);
                });
    }
}
