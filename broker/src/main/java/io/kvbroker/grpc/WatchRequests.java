package io.kvbroker.grpc;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.kvbroker.proto.v1.EnginePosition;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.query.RequestException;
import io.kvbroker.watch.ResumePoint;
import io.kvbroker.watch.WatchQuery;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns a {@code WatchRequest} into a {@link WatchQuery}, reading its resume token; a token that cannot be read gets
 * {@code INVALID_ARGUMENT} naming {@code resume_token}.
 *
 * <p>Design note: a resume token is a serialized {@code ResumeToken} message, encoded by the client library and
 * opaque to everyone else, so its codec is the API's and lives here; the watch package sees only the
 * {@link ResumePoint} it names.
 */
final class WatchRequests {
    private WatchRequests() {
    }

    static WatchQuery query(WatchRequest request) {
        return new WatchQuery(resumePoint(request.getResumeToken()), request.getModelsList(),
                request.getEnginesList());
    }

    /** The resume point a token names, or null for no token. */
    static ResumePoint resumePoint(ByteString bytes) {
        if (bytes.isEmpty()) {
            return null;
        }
        ResumeToken token;
        try {
            token = ResumeToken.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            throw RequestException.invalid("resume_token", "not a resume token (" + e.getMessage() + "); send the"
                    + " bytes a Watch client kept, or none to start with a snapshot");
        }
        if (token.getBrokerId().isEmpty()) {
            throw RequestException.invalid("resume_token", "has no broker_id; send the bytes a Watch client kept,"
                    + " or none to start with a snapshot");
        }
        List<ResumePoint.EnginePosition> positions = new ArrayList<>(token.getEnginesCount());
        for (int i = 0; i < token.getEnginesCount(); i++) {
            EnginePosition p = token.getEngines(i);
            if (p.getEngine().isEmpty()) {
                throw RequestException.invalid("resume_token", "position " + i + " names no engine");
            }
            positions.add(new ResumePoint.EnginePosition(p.getEngine(), p.getIncarnation(), p.getSequence(),
                    p.getFingerprint(), p.getBrokerSequence()));
        }
        return new ResumePoint(token.getBrokerId(), positions);
    }
}
