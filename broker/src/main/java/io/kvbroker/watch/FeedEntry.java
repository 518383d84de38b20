package io.kvbroker.watch;

import io.kvbroker.index.ResolvedBatch;
import java.util.function.Function;

/**
 * One applied batch or reset as Watch streams it, with its encoding built once for every watcher that sends it.
 *
 * <p>Design note: the encoding is the transport's (a protobuf message for gRPC) and opaque here: the first stream
 * that sends the entry builds it through {@link #encoded}, later ones reuse it. There is one transport, so one slot.
 */
public final class FeedEntry {
    private final long brokerSequence;
    private final int engineId;
    private final long incarnation;
    private final long sequence;
    private final long fingerprint;
    private final long engineTimeMicros;
    private final ResolvedBatch batch;
    /** Built by the first watcher that sends it (a benign race: equal encodings). */
    private volatile Object encoded;

    /**
     * @param brokerSequence the broker sequence it was applied under
     * @param sequence the engine's sequence; -1 for a reset
     * @param engineTimeMicros when the engine published it (0: unknown, as for batches read back from the journal)
     */
    FeedEntry(long brokerSequence, int engineId, long incarnation, long sequence, long fingerprint,
            long engineTimeMicros, ResolvedBatch batch) {
        this.brokerSequence = brokerSequence;
        this.engineId = engineId;
        this.incarnation = incarnation;
        this.sequence = sequence;
        this.fingerprint = fingerprint;
        this.engineTimeMicros = engineTimeMicros;
        this.batch = batch;
    }

    public long brokerSequence() {
        return brokerSequence;
    }

    public int engineId() {
        return engineId;
    }

    public long incarnation() {
        return incarnation;
    }

    /** The engine's sequence; -1 for a reset. */
    public long sequence() {
        return sequence;
    }

    public long fingerprint() {
        return fingerprint;
    }

    /** When the engine published it; 0: unknown. */
    public long engineTimeMicros() {
        return engineTimeMicros;
    }

    /** What the batch did: its block events and its changes to the holder table. */
    public ResolvedBatch batch() {
        return batch;
    }

    /** The entry's encoding, built by {@code encoder} for the first stream that needs it, then kept. */
    @SuppressWarnings("unchecked")
    public <T> T encoded(Function<? super FeedEntry, ? extends T> encoder) {
        Object built = encoded;
        if (built == null) {
            built = encoder.apply(this);
            encoded = built;
        }
        return (T) built;
    }
}
