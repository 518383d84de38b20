package io.kvbroker.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Gives every engine a small integer id and maps between ids, keys and topics.
 *
 * <p>Design note: hot paths (index, journal, streams) carry the engine as an {@code int}. Ids are dense from 0 and
 * never reused while the process runs, so an id seen in an old record can never name a different engine. One thread
 * (discovery, then ingest) registers and removes; readers on any thread see a consistent snapshot because the id
 * table is published through a volatile array that is replaced, not modified.
 */
public final class EngineRegistry {

    /** Where an engine stands in the registry. */
    public record Entry(int id, EngineSpec spec, boolean removed) {
    }

    private final Map<EngineKey, Integer> idsByKey = new HashMap<>();
    private final Map<String, Integer> idsByTopicRank = new HashMap<>();
    private volatile Entry[] entries = new Entry[0];
    /** Every model an engine registered since start-up served, removed engines' included; replaced, not modified. */
    private volatile Set<String> models = Set.of();

    /**
     * Registers an engine, or returns its id if the same key is registered with the same spec.
     *
     * @throws IllegalArgumentException if the key is registered with a different spec, or the (topic, rank) pair is
     *     taken by another engine: two engines would be indistinguishable on a shared socket
     */
    public synchronized int register(EngineSpec spec) {
        Integer existing = idsByKey.get(spec.key());
        if (existing != null) {
            Entry entry = entries[existing];
            if (!entry.removed() && entry.spec().equals(spec)) {
                return existing;
            }
            if (!entry.removed()) {
                throw new IllegalArgumentException("engine " + spec.key() + " is already registered as " + entry.spec()
                        + "; remove it before registering it again");
            }
        }
        String topicRank = topicRank(spec.topic(), spec.key().rank());
        if (!spec.topic().isEmpty()) {
            Integer other = idsByTopicRank.get(topicRank);
            if (other != null && !entries[other].removed()) {
                throw new IllegalArgumentException("engines " + entries[other].spec().key() + " and " + spec.key()
                        + " share topic '" + spec.topic() + "' at rank " + spec.key().rank());
            }
        }
        int id = entries.length;
        Entry[] grown = Arrays.copyOf(entries, id + 1);
        grown[id] = new Entry(id, spec, false);
        idsByKey.put(spec.key(), id);
        if (!spec.topic().isEmpty()) {
            idsByTopicRank.put(topicRank, id);
        }
        entries = grown;
        if (!models.contains(spec.model())) {
            Set<String> more = new TreeSet<>(models);
            more.add(spec.model());
            models = Collections.unmodifiableSet(more);
        }
        return id;
    }

    /** Marks an engine removed; its id is retired, and a later registration of the same key gets a new id. */
    public synchronized void remove(int id) {
        Entry entry = entry(id);
        if (entry.removed()) {
            return;
        }
        Entry[] copy = entries.clone();
        copy[id] = new Entry(id, entry.spec(), true);
        entries = copy;
        idsByKey.remove(entry.spec().key(), id);
        idsByTopicRank.remove(topicRank(entry.spec().topic(), entry.spec().key().rank()), id);
    }

    /** The entry for an id, removed or not. */
    public Entry entry(int id) {
        Entry[] snapshot = entries;
        if (id < 0 || id >= snapshot.length) {
            throw new IllegalArgumentException("no engine with id " + id);
        }
        return snapshot[id];
    }

    /** The live engine with this key, if any. */
    public synchronized Optional<Entry> find(EngineKey key) {
        Integer id = idsByKey.get(key);
        return id == null ? Optional.empty() : Optional.of(entries[id]);
    }

    /** The live engine that sends this topic at this rank, if any (listen mode tells engines apart this way). */
    public synchronized Optional<Entry> findByTopic(String topic, int rank) {
        Integer id = idsByTopicRank.get(topicRank(topic, rank));
        return id == null ? Optional.empty() : Optional.of(entries[id]);
    }

    /** Every engine not removed, by id. */
    public List<Entry> live() {
        List<Entry> live = new ArrayList<>();
        for (Entry entry : entries) {
            if (!entry.removed()) {
                live.add(entry);
            }
        }
        return live;
    }

    /**
     * Whether some engine registered since start-up serves {@code model}, a removed one included: a model whose
     * engines all went away (scaled to zero) is still known, a name no engine ever served (a typo) is not.
     */
    public boolean knowsModel(String model) {
        return models.contains(model);
    }

    /** The models {@link #knowsModel} knows, sorted. */
    public Set<String> models() {
        return models;
    }

    /** How many ids were handed out, removed engines included. */
    public int idCount() {
        return entries.length;
    }

    private static String topicRank(String topic, int rank) {
        return rank + "\u0000" + topic;
    }
}
