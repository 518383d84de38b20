package io.kvbroker.watch;

import io.kvbroker.core.PrefixScorer;
import io.kvbroker.index.BlockIndex;
import java.util.List;

/**
 * Where one Watch stream's events go, in order, and how ready the client is to take more: implemented by the
 * transport (gRPC's {@code WatchStreamAdapter}), called only by the stream's sending thread, except {@link #listen}.
 *
 * <p>Design note: the stream sends only while {@link #isReady} (the transport's own buffer, for gRPC the HTTP/2
 * window, is the flow control; nothing is queued beyond it), and measures a message of batches in the transport's
 * bytes ({@link #batchBytes}) so that its size bound is the encoded one.
 */
public interface WatchSink {
    /** Calls {@code onReady} whenever the client can take more, {@code onCancel} once it left; before any event. */
    void listen(Runnable onReady, Runnable onCancel);

    /** Whether the client can take another message now. */
    boolean isReady();

    /** Always first: where the stream starts and how its engines resume. */
    void started(Started started);

    /** An engine is in the stream, before any snapshot or batch of it. */
    void engineAdded(int engineId, String name, String model);

    /** An engine left the cluster (or the watcher's token names one this broker no longer has). */
    void engineRemoved(int engineId, String name);

    /** One part of one engine's whole holdings. */
    void snapshotPart(SnapshotPart part);

    /** The bytes {@code batch} takes in a message (the transport encodes each feed entry once, for all streams). */
    int batchBytes(FeedEntry batch);

    /** Engine batches in broker order, as one message. */
    void changes(List<FeedEntry> batches);

    /** Everything up to the stream's start has been sent; {@code brokerSequence} is the last batch included. */
    void caughtUp(long brokerSequence);

    /** The stream ends: the client is told why (not called once it went away). */
    void end(WatchEndedException reason);

    /**
     * The stream's first event.
     *
     * @param brokerSequence the last batch applied when the stream started
     * @param wholeSnapshot no resume point: every watched engine comes as a snapshot
     */
    record Started(String brokerId, long brokerSequence, int granularity, boolean wholeSnapshot, int enginesCurrent,
            int enginesResumed, int enginesSnapshotted, PrefixScorer.Weights weights) {
    }

    /**
     * Holdings {@code from} (inclusive) to {@code to} (exclusive) of an engine's snapshot: part 0 replaces everything
     * held of the engine, the last part ({@code to} reaches the end) makes its position apply.
     */
    record SnapshotPart(int engineId, BlockIndex.EngineHoldings holdings, int part, int from, int to) {
        public boolean lastPart() {
            return to == holdings.keys().length;
        }
    }
}
