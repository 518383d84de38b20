package io.kvbroker.ingest;

import io.kvbroker.event.KvEventBatch;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Records each engine's history as the sink saw it, for tests to compare with what the engine published. */
final class RecordingSink implements IngestSink {
    /** One applied batch; {@code timestamp} identifies the batch the simulator or test published. */
    record Applied(long incarnation, long sequence, double timestamp) {
    }

    final Map<Integer, List<Object>> events = new ConcurrentHashMap<>();

    private List<Object> of(int engineId) {
        return events.computeIfAbsent(engineId, id -> java.util.Collections.synchronizedList(new ArrayList<>()));
    }

    @Override
    public void onBatch(int engineId, long incarnation, long sequence, KvEventBatch batch) {
        of(engineId).add(new Applied(incarnation, sequence, batch.timestamp()));
    }

    @Override
    public void onReset(int engineId, long incarnation, ResetReason reason) {
        of(engineId).add(reason);
    }

    @Override
    public void onUnknownHistory(int engineId, long incarnation, long fromSequence, long toSequence) {
        of(engineId).add("unknown " + fromSequence + ".." + toSequence);
    }

    /** Sequences applied since the last reset of the engine's state, in order. */
    List<Long> sequencesSinceLastReset(int engineId) {
        List<Long> sequences = new ArrayList<>();
        synchronized (of(engineId)) {
            for (Object event : of(engineId)) {
                if (event instanceof ResetReason) {
                    sequences.clear();
                } else if (event instanceof Applied applied) {
                    sequences.add(applied.sequence());
                }
            }
        }
        return sequences;
    }

    List<Object> all(int engineId) {
        synchronized (of(engineId)) {
            return new ArrayList<>(of(engineId));
        }
    }
}
