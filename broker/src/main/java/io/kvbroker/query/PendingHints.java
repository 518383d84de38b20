package io.kvbroker.query;

import it.unimi.dsi.fastutil.longs.Long2LongMap;
import it.unimi.dsi.fastutil.longs.Long2LongOpenHashMap;
import it.unimi.dsi.fastutil.objects.ObjectIterator;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * The routing hints gateways recorded: per engine, the content keys it was sent and until when each counts as
 * pending there; a key stops being pending when its time to live passes or the engine is seen holding it.
 *
 * <p>Design note: hints live beside the index, never in it, so a wrong or stale hint can never change what the
 * index says an engine holds. Each engine's hints are one primitive map guarded by its own monitor: Hint calls for
 * different engines never contend, and Score takes a monitor only for engines that have hints at all. Expired keys
 * read as absent and are dropped on the engine's next Hint, which bounds the memory by {@code maxHintsPerEngine}
 * per engine without a sweeper thread.
 */
public final class PendingHints {
    private final ConcurrentHashMap<Integer, EngineHints> byEngine = new ConcurrentHashMap<>();
    private final LongSupplier clockMs;
    private final int maxPerEngine;

    /** One engine's pending keys, each with the time (on the hints' clock) it expires. */
    private static final class EngineHints {
        final Long2LongOpenHashMap expiresAtMs = new Long2LongOpenHashMap();

        EngineHints() {
            // Absent keys read as expired at time 0, so a lookup needs no containsKey first.
            expiresAtMs.defaultReturnValue(0);
        }

        void dropExpired(long nowMs) {
            ObjectIterator<Long2LongMap.Entry> entries = expiresAtMs.long2LongEntrySet().fastIterator();
            while (entries.hasNext()) {
                if (entries.next().getLongValue() <= nowMs) {
                    entries.remove();
                }
            }
        }
    }

    /** What a hint recorded: chunks newly pending or refreshed, and the engine's pending chunks in all. */
    public record Recorded(int recordedBlocks, int enginePendingBlocks) {
    }

    public PendingHints(LongSupplier clockMs, int maxPerEngine) {
        this.clockMs = clockMs;
        this.maxPerEngine = maxPerEngine;
    }

    /**
     * Records that {@code keys} were routed to an engine, except the ones it holds already (which confirm, and so
     * end, any earlier hint of them).
     *
     * @param held for each key, whether the engine holds it now
     * @throws RequestException of kind EXHAUSTED if the engine would have more than the allowed pending keys
     */
    public Recorded record(int engineId, long[] keys, boolean[] held, long ttlMs) {
        long now = clockMs.getAsLong();
        EngineHints hints = byEngine.computeIfAbsent(engineId, id -> new EngineHints());
        synchronized (hints) {
            hints.dropExpired(now);
            int added = 0;
            for (int i = 0; i < keys.length; i++) {
                if (!held[i] && !hints.expiresAtMs.containsKey(keys[i])) {
                    added++;
                }
            }
            if (hints.expiresAtMs.size() + added > maxPerEngine) {
                throw new RequestException(RequestException.Kind.EXHAUSTED, "engine_id", "engine " + engineId
                        + " has " + hints.expiresAtMs.size() + " pending hinted chunks; " + added + " more would pass"
                        + " the limit of " + maxPerEngine + " (grpc.maxHintsPerEngine)");
            }
            int recorded = 0;
            for (int i = 0; i < keys.length; i++) {
                if (held[i]) {
                    hints.expiresAtMs.remove(keys[i]);
                } else {
                    hints.expiresAtMs.put(keys[i], now + ttlMs);
                    recorded++;
                }
            }
            return new Recorded(recorded, hints.expiresAtMs.size());
        }
    }

    /** Whether no engine was ever hinted (or all were forgotten): Score skips the pending part then. */
    public boolean isEmpty() {
        return byEngine.isEmpty();
    }

    /** The engines with hints recorded (some may have expired). */
    public int[] engines() {
        return byEngine.keySet().stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    /**
     * The pending run of a prompt on one engine: how many of {@code keys}, from {@code cachedRun} on, are hinted to
     * it and not expired. The keys before {@code cachedRun} are held by the engine: their hints are confirmed and
     * dropped.
     */
    public int pendingRun(int engineId, long[] keys, int cachedRun) {
        EngineHints hints = byEngine.get(engineId);
        if (hints == null) {
            return 0;
        }
        long now = clockMs.getAsLong();
        synchronized (hints) {
            for (int i = 0; i < cachedRun && !hints.expiresAtMs.isEmpty(); i++) {
                hints.expiresAtMs.remove(keys[i]);
            }
            // Expiry is checked per key here (a full sweep per Score would cost as much as the engine's hints).
            int run = 0;
            while (cachedRun + run < keys.length && hints.expiresAtMs.get(keys[cachedRun + run]) > now) {
                run++;
            }
            return run;
        }
    }

    /** Forgets an engine's hints (the engine was removed). */
    public void forget(int engineId) {
        byEngine.remove(engineId);
    }
}
