package io.kvbroker.index;

import io.kvbroker.apply.BatchApplier;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.ingest.IngestSink;

/** Feeds the index and the reference model the same history. */
final class ReferenceTee implements IngestSink {
    final BlockIndex index;
    final ReferenceIndex reference;
    private final IngestSink applier;

    ReferenceTee(BlockIndex index, ReferenceIndex reference) {
        this.index = index;
        this.applier = BatchApplier.indexOnly(index);
        this.reference = reference;
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        applier.onBatch(engineId, incarnation, sequence, batch);
        synchronized (reference) {
            for (KvEvent event : batch.events()) {
                reference.apply(engineId, event);
            }
        }
    }

    @Override
    public void onReset(int engineId, long incarnation, ResetReason reason) {
        applier.onReset(engineId, incarnation, reason);
        synchronized (reference) {
            reference.reset(engineId);
        }
    }

    @Override
    public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
    }
}
