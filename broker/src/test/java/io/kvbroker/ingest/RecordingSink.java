package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.event.KvEventBatch;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.LongStream;

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

    /**
     * What the index holds of the engine: the batches applied since the last reset of its state, as the timestamps
     * their publisher stamped (which name the process and the sequence).
     */
    List<Double> timestampsSinceLastReset(int engineId) {
        List<Double> stamps = new ArrayList<>();
        for (Object event : all(engineId)) {
            if (event instanceof ResetReason) {
                stamps.clear();
            } else if (event instanceof Applied applied) {
                stamps.add(applied.timestamp());
            }
        }
        return stamps;
    }

    /**
     * Asserts the engine's whole history is what it published ({@code published}: timestamps by sequence): every
     * sequence once, in order, each the batch published, and no reset or unknown range.
     */
    void assertExactly(int engineId, List<Double> published, String engine) {
        List<Object> events = all(engineId);
        assertThat(events).as("%s: no reset, no unknown history", engine).allMatch(Applied.class::isInstance);
        assertThat(events.stream().map(e -> ((Applied) e).sequence()).toList())
                .as("%s: every sequence once, in order", engine)
                .containsExactlyElementsOf(LongStream.range(0, published.size()).boxed().toList());
        for (Object event : events) {
            Applied a = (Applied) event;
            assertThat(a.timestamp()).as("%s seq %d is the batch it published", engine, a.sequence())
                    .isEqualTo(published.get((int) a.sequence()));
        }
    }

    List<Object> all(int engineId) {
        synchronized (of(engineId)) {
            return new ArrayList<>(of(engineId));
        }
    }
}
