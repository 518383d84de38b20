package io.kvbroker.grpc;

import io.grpc.Status;

/** Hears how each gRPC call ended and how long it ran, for metrics; called once per call, on a gRPC thread. */
public interface CallObserver {
    /**
     * @param service the full service name ({@code kvbroker.v1.KvIndexService}, {@code grpc.health.v1.Health})
     * @param method the method's simple name ({@code Score}, {@code Watch})
     * @param streaming whether the call streams (its duration is then the stream's lifetime, not a latency)
     * @param code the status it closed with; {@code CANCELLED} when the client went away before it closed
     * @param nanos from the call's start to its end
     */
    void callEnded(String service, String method, boolean streaming, Status.Code code, long nanos);
}
