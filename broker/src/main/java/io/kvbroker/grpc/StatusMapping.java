package io.kvbroker.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.kvbroker.query.RequestException;
import io.kvbroker.watch.WatchEndedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The one place where failures of the query API become gRPC status codes. */
final class StatusMapping {
    private static final Logger LOG = LoggerFactory.getLogger(StatusMapping.class);

    private StatusMapping() {
    }

    /**
     * INVALID_ARGUMENT for a bad request (the message names the field), NOT_FOUND for a model no engine serves,
     * RESOURCE_EXHAUSTED for a bound on the
     * broker's state, UNAVAILABLE while starting or stopping, the status of a cancelled call (DEADLINE_EXCEEDED
     * when its deadline passed), INTERNAL for anything else (logged: it is a broker fault).
     */
    static StatusRuntimeException toStatus(Throwable failure) {
        if (failure instanceof RequestException refused) {
            Status status = switch (refused.kind()) {
                case INVALID -> Status.INVALID_ARGUMENT;
                case NOT_FOUND -> Status.NOT_FOUND;
                case EXHAUSTED -> Status.RESOURCE_EXHAUSTED;
                case UNAVAILABLE -> Status.UNAVAILABLE;
            };
            return status.withDescription(refused.getMessage()).asRuntimeException();
        }
        if (failure instanceof StatusRuntimeException status) {
            return status;
        }
        if (failure instanceof WatchEndedException ended) {
            // A Watch stream the broker ended: the client resumes from its token at once (ABORTED), on another
            // replica (UNAVAILABLE), or stops (INTERNAL: a fault, logged where it happened, so not again here).
            Status status = switch (ended.reason()) {
                case FELL_BEHIND -> Status.ABORTED;
                case STOPPING -> Status.UNAVAILABLE;
                case FAILED -> Status.INTERNAL;
            };
            return status.withDescription(ended.getMessage()).asRuntimeException();
        }
        LOG.warn("query failed: {}", failure.toString(), failure);
        return Status.INTERNAL.withDescription("internal error: " + failure).withCause(failure).asRuntimeException();
    }

    /** The status of a call whose context was cancelled: DEADLINE_EXCEEDED when its deadline passed. */
    static StatusRuntimeException cancelled(Context context) {
        Status status = Contexts.statusFromCancelled(context);
        return (status == null ? Status.CANCELLED : status).asRuntimeException();
    }

    static StatusRuntimeException unavailable() {
        return toStatus(new RequestException(RequestException.Kind.UNAVAILABLE, "",
                "kvbroker is starting (or stopping) and does not answer queries yet; retry, or ask another replica"));
    }
}
