package io.kvbroker.daemon;

import io.kvbroker.core.PrefixScore;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.IndexStats;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineState;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.ZmqIngest;
import io.kvbroker.lifecycle.Component;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Logs one status line at a fixed interval: engines by state, ingest rates, fault counters, the index's size, and a
 * sample Score when there is a prompt to sample (the simulator's).
 */
final class StatusReporter implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(StatusReporter.class);

    /** A prompt to score in the status line. */
    record Sample(String model, int[] tokens) {
    }

    private final ZmqIngest ingest;
    private final BlockIndex index;
    private final EngineRegistry registry;
    private final Supplier<Optional<Sample>> sample;
    private final long intervalMs;
    private ScheduledExecutorService timer;
    private long lastBatches;
    private long lastEvents;
    private long lastBytes;
    private long lastNanos;

    StatusReporter(ZmqIngest ingest, BlockIndex index, EngineRegistry registry, Supplier<Optional<Sample>> sample,
            long intervalMs) {
        this.ingest = ingest;
        this.index = index;
        this.registry = registry;
        this.sample = sample;
        this.intervalMs = intervalMs;
    }

    @Override
    public String name() {
        return "status";
    }

    @Override
    public void start() {
        lastNanos = System.nanoTime();
        timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread thread = new Thread(r, "kvbroker-status");
            thread.setDaemon(true);
            return thread;
        });
        timer.scheduleAtFixedRate(this::report, intervalMs, intervalMs, TimeUnit.MILLISECONDS);
    }

    /** The status line, built from counters that the ingest thread publishes. */
    String line() {
        Map<EngineState, Integer> byState = new EnumMap<>(EngineState.class);
        long batches = 0;
        long events = 0;
        long bytes = 0;
        long gaps = 0;
        long replays = 0;
        long voids = 0;
        long restarts = 0;
        long decodeErrors = 0;
        int engines = 0;
        for (EngineStream stream : ingest.streams()) {
            if (stream.state() == EngineState.REMOVED) {
                continue;
            }
            engines++;
            byState.merge(stream.state(), 1, Integer::sum);
            batches += stream.counters().get(Counter.BATCHES);
            events += stream.counters().get(Counter.BLOCK_EVENTS);
            bytes += stream.counters().get(Counter.BYTES);
            gaps += stream.counters().get(Counter.GAPS);
            replays += stream.counters().get(Counter.REPLAYS_REQUESTED);
            voids += stream.counters().get(Counter.VOIDS);
            restarts += stream.counters().get(Counter.RESTARTS_BY_SEQUENCE)
                    + stream.counters().get(Counter.RESTARTS_BY_FINGERPRINT)
                    + stream.counters().get(Counter.RESTARTS_SIGNALLED);
            decodeErrors += stream.counters().get(Counter.DECODE_ERRORS);
        }
        long now = System.nanoTime();
        double seconds = Math.max(1e-9, (now - lastNanos) / 1e9);
        StringBuilder states = new StringBuilder();
        byState.forEach((state, count) -> states.append(states.length() == 0 ? "" : ", ").append(count).append(' ')
                .append(state.label()));
        String line = String.format(Locale.ROOT, "engines %d (%s) | %.0f batches/s, %.0f block events/s, %.2f MB/s"
                + " | gaps %d, replays %d, voids %d, restarts %d, decode errors %d", engines,
                states.length() == 0 ? "none" : states, (batches - lastBatches) / seconds,
                (events - lastEvents) / seconds, (bytes - lastBytes) / seconds / 1e6, gaps, replays, voids, restarts,
                decodeErrors);
        lastBatches = batches;
        lastEvents = events;
        lastBytes = bytes;
        lastNanos = now;
        IndexStats stats = index.stats();
        line += String.format(Locale.ROOT, " | index: %d residencies, %d keys, %.1f MB, %d orphans", stats.residencies(),
                stats.keys(), stats.memoryBytes() / 1e6, stats.counts().orphanBlocks);
        if (stats.counts().evictedBlocks > 0) {
            line += String.format(Locale.ROOT, ", %d evicted over quota", stats.counts().evictedBlocks);
        }
        return line + sample.get().map(this::sampleScore).orElse("");
    }

    private String sampleScore(Sample prompt) {
        List<PrefixScore> scores = index.score(prompt.model(), null, prompt.tokens(), null, null, 3, 1);
        StringBuilder text = new StringBuilder(" | sample Score (").append(prompt.model()).append(", ")
                .append(prompt.tokens().length).append(" tokens): ");
        if (scores.isEmpty()) {
            return text.append("no engine holds it").toString();
        }
        for (int i = 0; i < scores.size(); i++) {
            PrefixScore s = scores.get(i);
            text.append(i == 0 ? "" : ", ").append(registry.entry(s.engineId()).spec().key()).append(' ')
                    .append(s.gpuTokens()).append(" GPU");
            if (s.offloadTokens() > 0) {
                text.append(" + ").append(s.offloadTokens()).append(" offloaded");
            }
        }
        return text.toString();
    }

    private void report() {
        try {
            LOG.info(line());
        } catch (RuntimeException e) {
            LOG.warn("status line failed: {}", e.toString());
        }
    }

    @Override
    public void stop(Duration budget) throws InterruptedException {
        timer.shutdownNow();
        timer.awaitTermination(Math.max(1, budget.toMillis()), TimeUnit.MILLISECONDS);
    }
}
