package io.kvbroker.metrics;

import io.grpc.Status;
import io.kvbroker.grpc.CallObserver;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

/**
 * gRPC calls by service, method and status code ({@code kvbroker_grpc_calls_total}) and the latency of unary calls
 * ({@code kvbroker_grpc_call_duration_seconds}), as the server's interceptor reports each call's end.
 *
 * <p>Design note: these are the only kvbroker series counted as things happen rather than read at scrape time, since
 * no counter of calls exists elsewhere; the Prometheus client's counter and classic histogram cost a map lookup and
 * a few atomic adds per call. Streams (Watch, health Watch, reflection) are counted but not timed: a stream's lifetime
 * says how long a client stayed, and would drown the latency of the calls that answer once.
 */
public final class GrpcMetrics implements CallObserver {
    /** From half a millisecond (a Score of a short prompt) to ten seconds (beyond any deadline worth setting). */
    private static final double[] LATENCY_BOUNDS_SECONDS = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25, 0.5, 1, 2.5, 10};

    private final Counter calls = Counter.builder().name("kvbroker_grpc_calls")
            .help("gRPC calls ended, by service, method and status code (CANCELLED: the client went away).")
            .labelNames("service", "method", "code").withoutExemplars().build();
    private final Histogram latency = Histogram.builder().name("kvbroker_grpc_call_duration_seconds")
            .help("Time from a unary call's start to its close, by service, method and status code (streams are"
                    + " not timed).")
            .labelNames("service", "method", "code").classicOnly().classicUpperBounds(LATENCY_BOUNDS_SECONDS)
            .withoutExemplars().build();

    @Override
    public void callEnded(String service, String method, boolean streaming, Status.Code code, long nanos) {
        calls.labelValues(service, method, code.name()).inc();
        if (!streaming) {
            latency.labelValues(service, method, code.name()).observe(nanos / 1e9);
        }
    }

    void register(PrometheusRegistry registry) {
        registry.register(calls);
        registry.register(latency);
    }
}
