package io.kvbroker.watch;

import io.kvbroker.watch.ResumePoint.EnginePosition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Where a Watch stream resumes each watched engine: already {@link Kind#CURRENT current}, {@link Kind#FROM_LOG from
 * this broker's log}, {@link Kind#FROM_RING from the ring} by engine sequence and fingerprint, or with a
 * {@link Kind#SNAPSHOT snapshot}; a pure function of the resume point, the engines and what the log holds.
 *
 * <p>Design note: the plan reads the broker only through its arguments (the engines' current positions and a
 * {@link Log} view of the ring and the journal), so every branch is tested without an index, a journal or a socket.
 * Broker sequences name a batch only under the {@code broker_id} that numbered them, so {@link Kind#FROM_LOG} is
 * tried only on that broker; engine sequences and fingerprints come from the engine itself, so the ring is searched
 * by them on any broker.
 */
public final class ResumePlan {
    /** How one engine resumes. */
    public enum Kind {
        /** The index holds the engine exactly at the watcher's position: nothing is sent before live batches. */
        CURRENT,
        /** This broker logged the batch at the position's broker sequence (ring or journal): later ones are sent. */
        FROM_LOG,
        /** The batch at the position is in the ring, found by engine sequence and fingerprint: later ones are sent. */
        FROM_RING,
        /** The position cannot be placed (none, too old, another incarnation, unknown): a snapshot of the engine. */
        SNAPSHOT
    }

    /** A watched engine on this broker: its id here and its stable name {@code pod/rank}. */
    public record Engine(int id, String name) {
    }

    /** Where the index holds an engine now. */
    public record Held(long incarnation, long sequence, long fingerprint, long brokerSequence) {
    }

    /**
     * A batch as the log holds it: ring entries name their engine by id ({@code engine} null), journal records by
     * name ({@code engineId} -1).
     */
    public record Logged(int engineId, String engine, long incarnation, long sequence, long fingerprint) {
    }

    /** What the plan reads of the broker's log. */
    public interface Log {
        /** The first broker sequence still in the ring. */
        long ringTail();

        /** The ring's batch at {@code brokerSequence}, or null if it is not there (written over, or not yet). */
        Logged ring(long brokerSequence);

        /** The journal's batch at {@code brokerSequence}, or null (no journal, trimmed, or not written). */
        Logged journal(long brokerSequence);
    }

    /**
     * One engine's decision.
     *
     * @param delivered for all but {@link Kind#SNAPSHOT}: the broker sequence of the last change the watcher has of
     *     it (only later batches are sent)
     */
    public record Decision(Engine engine, Kind kind, long delivered) {
    }

    private final Map<Integer, Decision> decisions;
    private final List<Integer> snapshots;
    private final List<String> removed;
    private final long cursor;

    private ResumePlan(Map<Integer, Decision> decisions, List<Integer> snapshots, List<String> removed, long cursor) {
        this.decisions = decisions;
        this.snapshots = snapshots;
        this.removed = removed;
        this.cursor = cursor;
    }

    /**
     * Plans a stream that starts when {@code next} is the broker sequence the next batch gets.
     *
     * @param from the watcher's resume point, or null (every engine gets a snapshot)
     * @param engines the watched engines on this broker, in the order their snapshots go
     * @param current where the index holds an engine now (read only for engines the resume point names)
     * @param watchedName whether an engine name passes the stream's engine filter
     */
    public static ResumePlan plan(ResumePoint from, String brokerId, long next, List<Engine> engines,
            Function<Engine, Held> current, Predicate<String> watchedName, Log log) {
        boolean sameBroker = from != null && from.brokerId().equals(brokerId);
        Map<String, EnginePosition> positions = new HashMap<>();
        if (from != null) {
            from.engines().forEach(p -> positions.put(p.engine(), p));
        }
        long cursor = next;
        Map<Integer, Decision> decisions = new LinkedHashMap<>();
        List<Integer> snapshots = new ArrayList<>();
        Map<Integer, EnginePosition> search = new HashMap<>();
        Map<Integer, Engine> searched = new HashMap<>();
        Set<String> present = new HashSet<>();
        for (Engine engine : engines) {
            present.add(engine.name());
            EnginePosition position = positions.get(engine.name());
            if (position == null) {
                decisions.put(engine.id(), new Decision(engine, Kind.SNAPSHOT, 0));
                snapshots.add(engine.id());
                continue;
            }
            Held now = current.apply(engine);
            if (matches(now, position, sameBroker)) {
                decisions.put(engine.id(), new Decision(engine, Kind.CURRENT, now.brokerSequence()));
                continue;
            }
            if (sameBroker && logged(engine, position, log)) {
                long at = position.brokerSequence();
                decisions.put(engine.id(), new Decision(engine, Kind.FROM_LOG, at));
                cursor = Math.min(cursor, at + 1);
            } else {
                // Decided after the ring is searched; the entry keeps the engine's place in the order.
                decisions.put(engine.id(), null);
                search.put(engine.id(), position);
                searched.put(engine.id(), engine);
            }
        }
        if (!search.isEmpty()) {
            // Any broker: the batch at each position, by engine sequence and payload fingerprint, in the ring.
            Map<Integer, Long> found = new HashMap<>();
            for (long s = log.ringTail(); s < next; s++) {
                Logged entry = log.ring(s);
                EnginePosition position = entry == null ? null : search.get(entry.engineId());
                if (position != null && entry.sequence() >= 0 && entry.sequence() == position.sequence()
                        && entry.fingerprint() == position.fingerprint()) {
                    found.put(entry.engineId(), s);
                }
            }
            for (Integer id : search.keySet()) {
                Long at = found.get(id);
                if (at != null) {
                    decisions.put(id, new Decision(searched.get(id), Kind.FROM_RING, at));
                    cursor = Math.min(cursor, at + 1);
                } else {
                    decisions.put(id, new Decision(searched.get(id), Kind.SNAPSHOT, 0));
                    snapshots.add(id);
                }
            }
        }
        List<String> removed = positions.keySet().stream().filter(n -> !present.contains(n) && watchedName.test(n))
                .sorted().toList();
        return new ResumePlan(decisions, List.copyOf(snapshots), removed, cursor);
    }

    /** Whether the index holds the engine exactly at the watcher's position. */
    private static boolean matches(Held now, EnginePosition position, boolean sameBroker) {
        if (sameBroker && now.brokerSequence() == position.brokerSequence()
                && now.incarnation() == position.incarnation() && now.sequence() == position.sequence()) {
            return true;
        }
        // On another broker a batch is named by its engine sequence and payload fingerprint; a reset has neither.
        return now.sequence() >= 0 && now.sequence() == position.sequence()
                && now.fingerprint() == position.fingerprint();
    }

    /**
     * Whether this broker logged the engine's batch at the position's broker sequence (ring or journal), so
     * everything after it can be sent; not when trimmed, or when the position came from a batch this broker lost in
     * a crash and numbered differently since.
     */
    private static boolean logged(Engine engine, EnginePosition position, Log log) {
        long at = position.brokerSequence();
        Logged entry = log.ring(at);
        if (entry != null) {
            return entry.engineId() == engine.id() && same(entry, position);
        }
        Logged record = log.journal(at);
        return record != null && engine.name().equals(record.engine()) && same(record, position);
    }

    private static boolean same(Logged batch, EnginePosition position) {
        return batch.incarnation() == position.incarnation() && batch.sequence() == position.sequence()
                && batch.fingerprint() == position.fingerprint();
    }

    /** Each watched engine's decision, in the order the engines were given. */
    public List<Decision> decisions() {
        return List.copyOf(decisions.values());
    }

    /** The decision for the engine with {@code engineId}, or null if it is not watched. */
    public Decision decision(int engineId) {
        return decisions.get(engineId);
    }

    /** Engines to snapshot, in order. */
    public List<Integer> snapshots() {
        return snapshots;
    }

    /** Names the resume point has that this broker no longer has (and the filter watches), sorted. */
    public List<String> removed() {
        return removed;
    }

    /** The first broker sequence the stream reads: the earliest batch after a position resumed from the log. */
    public long cursor() {
        return cursor;
    }

    /** How many engines resume with {@code kind}. */
    public int count(Kind kind) {
        return (int) decisions.values().stream().filter(d -> d.kind() == kind).count();
    }
}
