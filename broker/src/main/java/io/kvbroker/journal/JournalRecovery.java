package io.kvbroker.journal;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import java.util.HashMap;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * Restores the index and the engines' cursors from the journal at start-up: each engine's last checkpoint, then the
 * log records after it, then the cursor that matches the last of them.
 *
 * <p>Design note: records are replayed through the index's own apply code with their resolved keys, so an engine
 * ends exactly as it was when kvbroker stopped; ingest then resumes it from its cursor, asking the engine to replay
 * from there and checking the fingerprint, as after any disconnect. Engines in the journal that are not configured
 * now are left out (their records age out of the log). Any record or checkpoint that cannot be read stops start-up:
 * a half-loaded index would answer wrongly without saying so.
 */
public final class JournalRecovery {
    /** What recovery did. */
    public record Result(int engines, int checkpoints, long records, long millis) {
    }

    private JournalRecovery() {
    }

    /**
     * @param resume receives each engine's cursor, by engine id, for ingest to continue from
     * @throws JournalException if a checkpoint or record cannot be read
     */
    public static Result recover(Journal journal, BlockIndex index, EngineRegistry registry,
            CheckpointScheduler checkpoints, BiConsumer<Integer, Journal.Cursor> resume) {
        long start = System.nanoTime();
        Map<String, Integer> ids = new HashMap<>();
        for (EngineRegistry.Entry entry : registry.live()) {
            ids.put(entry.spec().key().toString(), entry.id());
        }
        Map<Integer, Long> checkpointAt = new HashMap<>();
        int restored = 0;
        for (Map.Entry<String, Journal.Checkpoint> checkpoint : journal.checkpoints().entrySet()) {
            Integer id = ids.get(checkpoint.getKey());
            if (id == null) {
                continue;
            }
            try {
                index.restore(id, checkpoint.getValue().index());
            } catch (IllegalArgumentException e) {
                throw new JournalException("the checkpoint of engine " + checkpoint.getKey() + " in " + journal.dir()
                        + " cannot be read (" + e.getMessage() + "); start fresh with journal.startFresh=true", e);
            }
            checkpointAt.put(id, checkpoint.getValue().logSequence());
            restored++;
        }
        long from = journal.firstSequence();
        if (checkpointAt.size() == ids.size() && !ids.isEmpty()) {
            from = checkpointAt.values().stream().mapToLong(s -> s + 1).min().orElse(from);
        }
        Map<Integer, Long> lastRecord = new HashMap<>();
        long[] replayed = new long[1];
        journal.forEachRecord(from, (sequence, record) -> {
            Integer id = ids.get(record.engine());
            if (id == null || sequence <= checkpointAt.getOrDefault(id, 0L)) {
                return;
            }
            index.applyResolved(id, record.incarnation(), record.sequence(), record.batch(), record.fingerprint(),
                    sequence);
            lastRecord.put(id, sequence);
            replayed[0]++;
        });
        journal.cursors().forEach((name, cursor) -> {
            Integer id = ids.get(name);
            if (id != null) {
                resume.accept(id, cursor);
            }
        });
        for (int id : ids.values()) {
            long checkpoint = checkpointAt.getOrDefault(id, 0L);
            checkpoints.recovered(id, checkpoint, lastRecord.getOrDefault(id, checkpoint));
        }
        return new Result(ids.size(), restored, replayed[0], (System.nanoTime() - start) / 1_000_000);
    }
}
