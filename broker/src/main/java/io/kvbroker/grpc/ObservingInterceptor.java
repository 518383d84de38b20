package io.kvbroker.grpc;

import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Tells a {@link CallObserver} how every call on the server ended: its status code and the time from its start.
 *
 * <p>Design note: a call usually ends in {@code close(status)}, but one whose client cancels or disconnects may never
 * be closed by the service (a Watch stream ends that way), so the listener's {@code onCancel} ends it too, as
 * {@code CANCELLED}; whichever comes first reports, once. The cost per call is two small wrappers and a clock read.
 */
final class ObservingInterceptor implements ServerInterceptor {
    private final CallObserver observer;

    ObservingInterceptor(CallObserver observer) {
        this.observer = observer;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
            ServerCallHandler<Q, R> next) {
        MethodDescriptor<Q, R> descriptor = call.getMethodDescriptor();
        Ending ending = new Ending(descriptor, System.nanoTime());
        ServerCall<Q, R> observed = new SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                ending.end(status.getCode());
                super.close(status, trailers);
            }
        };
        return new SimpleForwardingServerCallListener<>(next.startCall(observed, headers)) {
            @Override
            public void onCancel() {
                ending.end(Status.Code.CANCELLED);
                super.onCancel();
            }
        };
    }

    /** One call's end, reported once. */
    private final class Ending extends AtomicBoolean {
        private final MethodDescriptor<?, ?> descriptor;
        private final long startNanos;

        Ending(MethodDescriptor<?, ?> descriptor, long startNanos) {
            this.descriptor = descriptor;
            this.startNanos = startNanos;
        }

        void end(Status.Code code) {
            if (compareAndSet(false, true)) {
                String service = descriptor.getServiceName();
                observer.callEnded(service == null ? "" : service, descriptor.getBareMethodName(),
                        descriptor.getType() != MethodDescriptor.MethodType.UNARY, code,
                        System.nanoTime() - startNanos);
            }
        }
    }
}
