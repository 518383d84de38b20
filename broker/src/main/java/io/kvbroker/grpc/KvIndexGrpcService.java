package io.kvbroker.grpc;

import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.proto.v1.HintRequest;
import io.kvbroker.proto.v1.HintResponse;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ListEnginesRequest;
import io.kvbroker.proto.v1.ListEnginesResponse;
import io.kvbroker.proto.v1.LookupRequest;
import io.kvbroker.proto.v1.LookupResponse;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.watch.WatchService;
import java.util.function.Supplier;

/**
 * {@code kvbroker.v1.KvIndexService}: a thin adapter from the API's messages to {@link IndexQueries} and back, that
 * answers UNAVAILABLE until the daemon is ready and does no work for a call whose deadline already passed.
 */
final class KvIndexGrpcService extends KvIndexServiceGrpc.KvIndexServiceImplBase {
    private final IndexQueries queries;
    private final Requests requests;
    private final Readiness readiness;

    private final WatchService watch;

    KvIndexGrpcService(IndexQueries queries, QueryLimits limits, Readiness readiness, WatchService watch) {
        this.watch = watch;
        this.queries = queries;
        this.requests = new Requests(limits, queries.granularity());
        this.readiness = readiness;
    }

    @Override
    public void score(ScoreRequest request, StreamObserver<ScoreResponse> observer) {
        answer(observer, () -> Responses.score(queries.score(requests.score(request)), queries.granularity()));
    }

    @Override
    public void lookup(LookupRequest request, StreamObserver<LookupResponse> observer) {
        answer(observer, () -> {
            Requests.Lookup lookup = requests.lookup(request);
            return Responses.lookup(lookup.hashes() ? queries.lookupHashes(lookup.keys())
                    : queries.lookupKeys(lookup.keys()));
        });
    }

    @Override
    public void listEngines(ListEnginesRequest request, StreamObserver<ListEnginesResponse> observer) {
        answer(observer, () -> Responses.engines(queries.engines(request.getIncludeRemoved()),
                queries.granularity()));
    }

    @Override
    public void hint(HintRequest request, StreamObserver<HintResponse> observer) {
        answer(observer, () -> {
            Requests.Hint hint = requests.hint(request);
            return Responses.hint(queries.hint(hint.engineId(), hint.model(), hint.loraName(), hint.tokens(),
                    hint.keys(), hint.ttlMs()), hint.ttlMs());
        });
    }

    @Override
    public void watch(WatchRequest request, StreamObserver<WatchResponse> observer) {
        if (watch == null) {
            super.watch(request, observer);
            return;
        }
        if (!readiness.isReady()) {
            observer.onError(StatusMapping.unavailable());
            return;
        }
        try {
            watch.open(WatchRequests.query(request),
                    new WatchStreamAdapter((ServerCallStreamObserver<WatchResponse>) observer));
        } catch (RuntimeException e) {
            observer.onError(StatusMapping.toStatus(e));
        }
    }

    private <T> void answer(StreamObserver<T> observer, Supplier<T> call) {
        Context context = Context.current();
        if (context.isCancelled()) {
            // The deadline passed while the call waited for a thread: the caller has given up, skip the work.
            observer.onError(StatusMapping.cancelled(context));
            return;
        }
        if (!readiness.isReady()) {
            observer.onError(StatusMapping.unavailable());
            return;
        }
        T response;
        try {
            response = call.get();
        } catch (RuntimeException e) {
            observer.onError(StatusMapping.toStatus(e));
            return;
        }
        observer.onNext(response);
        observer.onCompleted();
    }
}
