package io.kvbroker.client;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.HolderTable;
import io.kvbroker.core.LongIntTable;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.proto.v1.ChangeBatches;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EngineRemoved;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import io.kvbroker.proto.v1.WatchedEngine;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.StampedLock;

/**
 * A gateway's copy of the broker's index, fed by a Watch stream and scored by the broker's own code: the holdings of
 * every watched engine in a {@link HolderTable}, read by {@link PrefixScorer} with keys from {@link ContentKeys}.
 *
 * <p>Engines have mirror ids, dense from 0 and kept per name ("pod/rank") for the mirror's life, so an id a gateway
 * stored stays valid across reconnects and fail-over to a replica that numbers the engines otherwise; each stream's
 * ids are mapped to them as its {@code engine_added} messages arrive. Per engine the mirror keeps its holdings (key to
 * span and media) to apply a cleared batch, a snapshot's first part and a removal.
 *
 * <p>Design note: one thread applies messages, any number of threads score. Each batch and each snapshot part is
 * applied under the write lock of a {@link StampedLock}; a score first reads optimistically and keeps its answer if
 * no write ran meanwhile, else scores again under the read lock. The optimistic read is safe because the holder
 * table already tolerates racing readers (it never tears or moves an entry; an engine added mid-read surfaces as an
 * index error, caught here), so the common read takes no lock and never delays the writer; the fallback bounds a
 * reader's retries under a busy stream to one and blocks the writer for one score. The broker's cheaper scheme (a
 * write log and per-engine rescoring) pays off at its ingest rate; a mirror's writes arrive at the stream's pace.
 */
public final class IndexMirror implements WatchListener {
    /** How a stream says to score: granularity (0 before any stream) and medium weights. */
    private record Scoring(int granularity, PrefixScorer.Weights weights) {
    }

    /** A query thread's key computer and scorer, for one {@link Scoring}. */
    private record Reader(Scoring scoring, ContentKeys keys, PrefixScorer scorer) {
    }

    private final StampedLock lock = new StampedLock();
    private final HolderTable holders = new HolderTable();
    private final WatchPositions positions = new WatchPositions();
    private final ThreadLocal<Reader> readers = new ThreadLocal<>();
    private volatile Scoring scoring = new Scoring(0, PrefixScorer.Weights.DEFAULT);

    // Writer's state (the applying thread only).
    private final Map<String, Integer> idsByName = new HashMap<>();
    private final Map<Integer, Integer> streamIds = new HashMap<>();
    /** Per mirror id: key to packed span and media ({@link #pack}); null for an engine holding nothing. */
    private LongIntTable[] holdings = new LongIntTable[16];
    /** Per mirror id, published whole so readers need no lock. */
    private volatile String[] names = new String[0];
    private volatile String[] models = new String[0];
    private volatile long skippedHoldings;

    @Override
    public void onMessage(WatchResponse message) {
        switch (message.getEventCase()) {
            case STARTED -> write(() -> started(message.getStarted()));
            case ENGINE_ADDED -> write(() -> engineAdded(message.getEngineAdded()));
            case SNAPSHOT -> write(() -> snapshot(message.getSnapshot()));
            case CHANGES -> changes(message.getChanges());
            case ENGINE_REMOVED -> write(() -> engineRemoved(message.getEngineRemoved()));
            case CAUGHT_UP -> positions.onMessage(message);
            default -> {
                // A message kind of a later protocol: nothing to apply.
            }
        }
    }

    // ---- reads (any thread) ----

    /** Scores a prompt of token ids as the broker's Score does (capped at {@code floor((n - 1) / g)} chunks). */
    public List<PrefixScore> score(String model, String loraName, int[] tokens, int topK, int minTokens) {
        return score(model, loraName, tokens, null, topK, minTokens);
    }

    /**
     * Scores a prompt of token ids over the engines of {@code engineFilter} (mirror ids; null for all).
     *
     * @return engines holding a prefix, best first (mirror ids); empty before the first stream started
     */
    public List<PrefixScore> score(String model, String loraName, int[] tokens, int[] engineFilter, int topK,
            int minTokens) {
        return read(reader -> reader.scorer.score(reader.keys, reader.keys.root(model, loraName), tokens,
                PrefixScorer.chunksToScore(tokens.length, reader.scoring.granularity), holders, engineFilter, topK,
                minTokens));
    }

    /** Scores a prompt given as its content keys (all scored). */
    public List<PrefixScore> scoreKeys(long[] keys, int topK, int minTokens) {
        return scoreKeys(keys, null, topK, minTokens);
    }

    /** Scores a prompt given as its content keys over the engines of {@code engineFilter} (null for all). */
    public List<PrefixScore> scoreKeys(long[] keys, int[] engineFilter, int topK, int minTokens) {
        return read(reader -> reader.scorer.score(keys, keys.length, reader.scoring.granularity, holders,
                engineFilter, topK, minTokens));
    }

    /** The name ("pod/rank") of a mirror id, or null for an id never given out. */
    public String name(int engineId) {
        String[] all = names;
        return engineId >= 0 && engineId < all.length ? all[engineId] : null;
    }

    /** The model the engine of a mirror id serves, as its latest {@code engine_added} said, or null. */
    public String model(int engineId) {
        String[] all = models;
        return engineId >= 0 && engineId < all.length ? all[engineId] : null;
    }

    /** The mirror id of an engine name, or -1. */
    public int engineId(String name) {
        String[] all = names;
        for (int i = 0; i < all.length; i++) {
            if (all[i].equals(name)) {
                return i;
            }
        }
        return -1;
    }

    /** Tokens per chunk of the streams applied; 0 before the first. */
    public int granularity() {
        return scoring.granularity;
    }

    /** What has been applied, engine by engine, and whether the current stream has caught up with its start. */
    public WatchPositions positions() {
        return positions;
    }

    /** Distinct content keys held by any engine. */
    public long keys() {
        return holders.keys();
    }

    /** Holdings the mirror could not represent (a span outside 1..255), skipped. */
    public long skippedHoldings() {
        return skippedHoldings;
    }

    /** A copy of an engine's holdings as key to {@code span << 4 | media}, for tests and diagnostics (read lock). */
    public Map<Long, Integer> holdings(int engineId) {
        long stamp = lock.readLock();
        try {
            Map<Long, Integer> copy = new HashMap<>();
            LongIntTable table = engineId < holdings.length ? holdings[engineId] : null;
            if (table != null) {
                table.forEach(copy::put);
            }
            return copy;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    private List<PrefixScore> read(java.util.function.Function<Reader, List<PrefixScore>> score) {
        Scoring current = scoring;
        if (current.granularity == 0) {
            return List.of();
        }
        Reader reader = readers.get();
        if (reader == null || reader.scoring != current) {
            reader = new Reader(current, new ContentKeys(current.granularity), new PrefixScorer(current.weights));
            readers.set(reader);
        }
        long stamp = lock.tryOptimisticRead();
        if (stamp != 0) {
            try {
                List<PrefixScore> scores = score.apply(reader);
                if (lock.validate(stamp)) {
                    return scores;
                }
            } catch (IndexOutOfBoundsException e) {
                // An engine added during the read is beyond the scorer's arrays: a write overlapped it.
            }
        }
        stamp = lock.readLock();
        try {
            return score.apply(reader);
        } finally {
            lock.unlockRead(stamp);
        }
    }

    // ---- writes (the applying thread) ----

    private void write(Runnable change) {
        long stamp = lock.writeLock();
        try {
            change.run();
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    private void started(WatchStarted started) {
        int granularity = scoring.granularity;
        if (granularity != 0 && started.getGranularity() != granularity) {
            throw new IllegalStateException("broker " + started.getBrokerId() + " keys chunks of "
                    + started.getGranularity() + " tokens, this mirror holds chunks of " + granularity
                    + ": replicas of one cluster must share index.granularity");
        }
        if (started.getGranularity() < 1) {
            throw new IllegalStateException("broker " + started.getBrokerId() + " sent granularity "
                    + started.getGranularity());
        }
        scoring = new Scoring(started.getGranularity(), new PrefixScorer.Weights(started.getWeightGpu(),
                started.getWeightCpu(), started.getWeightStorage(), started.getWeightOther()));
        streamIds.clear();
        if (started.getWholeSnapshot()) {
            for (int e = 0; e < holdings.length; e++) {
                clear(e);
            }
        }
        positions.started(started);
    }

    private void engineAdded(WatchedEngine engine) {
        Integer id = idsByName.get(engine.getName());
        if (id == null) {
            id = idsByName.size();
            idsByName.put(engine.getName(), id);
            String[] grownNames = Arrays.copyOf(names, id + 1);
            grownNames[id] = engine.getName();
            names = grownNames;
            models = Arrays.copyOf(models, id + 1);
            if (id >= holdings.length) {
                holdings = Arrays.copyOf(holdings, holdings.length * 2);
            }
        }
        if (!engine.getModel().equals(models[id])) {
            String[] changed = models.clone();
            changed[id] = engine.getModel();
            models = changed;
        }
        streamIds.put(engine.getEngineId(), id);
        positions.engineAdded(engine);
    }

    private void snapshot(EngineSnapshot snapshot) {
        int e = mirrorId(snapshot.getEngineId(), "snapshot");
        if (snapshot.getPart() == 0) {
            clear(e);
        }
        for (int i = 0; i < snapshot.getKeysCount(); i++) {
            set(e, snapshot.getKeys(i), snapshot.getSpans(i), snapshot.getMedia(i));
        }
        positions.snapshot(snapshot);
    }

    private void changes(ChangeBatches changes) {
        // One batch at a time under the lock: a reader sees every batch whole, and waits for one batch at most.
        for (EngineBatch batch : changes.getBatchesList()) {
            write(() -> batch(batch));
        }
    }

    private void batch(EngineBatch batch) {
        int e = mirrorId(batch.getEngineId(), "batch");
        if (batch.getCleared()) {
            clear(e);
        }
        for (int i = 0; i < batch.getKeysCount(); i++) {
            set(e, batch.getKeys(i), batch.getSpans(i), batch.getMedia(i));
        }
        positions.batch(batch);
    }

    private void engineRemoved(EngineRemoved removed) {
        Integer id = streamIds.remove(removed.getEngineId());
        if (id == null) {
            id = idsByName.get(removed.getName());
        }
        if (id != null) {
            clear(id);
        }
        positions.engineRemoved(removed);
    }

    private int mirrorId(int streamId, String what) {
        Integer id = streamIds.get(streamId);
        if (id == null) {
            throw new IllegalStateException("a " + what + " of engine id " + streamId
                    + ", which this stream did not announce with engine_added");
        }
        return id;
    }

    /** Sets engine {@code e}'s holding of {@code key}; media 0 drops it. */
    private void set(int e, long key, int span, int media) {
        media &= Media.ALL;
        if (media != 0 && (span < 1 || span > 255)) {
            skippedHoldings++;
            return;
        }
        LongIntTable table = holdings[e];
        int old = table == null ? -1 : table.get(key);
        if (media == 0) {
            if (old != -1) {
                holders.remove(key, e);
                table.remove(key);
            }
            return;
        }
        int packed = pack(span, media);
        if (old == packed) {
            return;
        }
        if (table == null) {
            table = new LongIntTable();
            holdings[e] = table;
        }
        if (old == -1) {
            holders.add(key, e, span, media);
        } else {
            holders.update(key, e, span, media);
        }
        table.put(key, packed);
    }

    /** Drops every holding of engine {@code e}. */
    private void clear(int e) {
        LongIntTable table = holdings[e];
        if (table != null) {
            table.forEach((key, packed) -> holders.remove(key, e));
            holdings[e] = null;
        }
    }

    private static int pack(int span, int media) {
        return span << 4 | media;
    }
}
