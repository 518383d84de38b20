package io.kvbroker.grpc;

import io.grpc.stub.ServerCallStreamObserver;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.watch.FeedEntry;
import io.kvbroker.watch.WatchEndedException;
import io.kvbroker.watch.WatchSink;
import java.util.List;

/**
 * A Watch call's response stream as a {@link WatchSink}: encodes each event as a {@code WatchResponse}, takes
 * readiness, onReady and cancellation from gRPC (its flow control), and ends the call with the status
 * {@link StatusMapping} gives the reason.
 */
final class WatchStreamAdapter implements WatchSink {
    private final ServerCallStreamObserver<WatchResponse> call;

    WatchStreamAdapter(ServerCallStreamObserver<WatchResponse> call) {
        this.call = call;
    }

    @Override
    public void listen(Runnable onReady, Runnable onCancel) {
        call.setOnReadyHandler(onReady);
        call.setOnCancelHandler(onCancel);
    }

    @Override
    public boolean isReady() {
        return call.isReady();
    }

    @Override
    public void started(Started started) {
        call.onNext(WatchResponses.started(started));
    }

    @Override
    public void engineAdded(int engineId, String name, String model) {
        call.onNext(WatchResponses.engineAdded(engineId, name, model));
    }

    @Override
    public void engineRemoved(int engineId, String name) {
        call.onNext(WatchResponses.engineRemoved(engineId, name));
    }

    @Override
    public void snapshotPart(SnapshotPart part) {
        call.onNext(WatchResponses.snapshotPart(part));
    }

    @Override
    public int batchBytes(FeedEntry batch) {
        return WatchResponses.batch(batch).getSerializedSize();
    }

    @Override
    public void changes(List<FeedEntry> batches) {
        call.onNext(WatchResponses.changes(batches));
    }

    @Override
    public void caughtUp(long brokerSequence) {
        call.onNext(WatchResponses.caughtUp(brokerSequence));
    }

    @Override
    public void end(WatchEndedException reason) {
        try {
            call.onError(StatusMapping.toStatus(reason));
        } catch (RuntimeException e) {
            // The call is already closed (cancelled under us): nothing to tell.
        }
    }
}
