package io.kvbroker.grpc;

import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.InputStream;

/**
 * Parses a service's requests inside the call, where a failure can be answered: bytes that are no request of the
 * method's type get {@code INVALID_ARGUMENT} naming {@code request}.
 *
 * <p>Design note: gRPC parses a request before any interceptor sees it, and answers a parse failure with
 * {@code UNKNOWN} ("Application error processing RPC") and a SEVERE log line with a stack trace, per call: a client
 * sending garbage would fill the log and read as a broker fault. {@link ServerInterceptors#useMarshalledMessages}
 * with a pass-through marshaller hands the call the transport's own stream and moves the parse into the listener's
 * {@code onMessage}, where this interceptor catches it. The stream is handed on as it is (not buffered, as
 * {@code useInputStreamMessages} does), so protobuf still reads it the fast way, and it is parsed at once, before gRPC
 * closes it. Responses pass through unchanged, without a copy.
 */
final class RequestParsing implements ServerInterceptor {
    private static final MethodDescriptor.Marshaller<InputStream> PASS_THROUGH = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(InputStream value) {
            return value;
        }

        @Override
        public InputStream parse(InputStream stream) {
            return stream;
        }
    };

    private RequestParsing() {
    }

    /** The service, its requests parsed where a failure becomes {@code INVALID_ARGUMENT}. */
    static ServerServiceDefinition guard(ServerServiceDefinition service) {
        return ServerInterceptors.intercept(ServerInterceptors.useMarshalledMessages(service, PASS_THROUGH),
                new RequestParsing());
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
            ServerCallHandler<Q, R> next) {
        return new SimpleForwardingServerCallListener<>(next.startCall(call, headers)) {
            private boolean refused;

            @Override
            public void onMessage(Q message) {
                if (refused) {
                    return;
                }
                try {
                    super.onMessage(message);
                } catch (StatusRuntimeException e) {
                    if (!(e.getCause() instanceof InvalidProtocolBufferException parse)) {
                        throw e;
                    }
                    refused = true;
                    call.close(Status.INVALID_ARGUMENT.withDescription("request: not a valid "
                            + call.getMethodDescriptor().getBareMethodName() + " request: " + parse.getMessage()),
                            new Metadata());
                }
            }

            @Override
            public void onHalfClose() {
                // A refused call is closed: the service must not look for the request it never got.
                if (!refused) {
                    super.onHalfClose();
                }
            }
        };
    }
}
