package io.kvbroker.watch;

import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.LogRecord;
import io.kvbroker.watch.WatchEndedException.Reason;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;

/**
 * One Watch stream: where it resumes each engine ({@link ResumePlan}), then its snapshots, then the batches from the
 * ring (or, while catching up, from the journal), handed to its {@link WatchSink} as fast as the client reads. Only
 * its sending thread touches it, except {@link #cancel}.
 *
 * <p>Design note: the stream keeps, per engine, the broker sequence of the last change the client has of it
 * ({@code delivered}); a batch is sent only if it is later, so a snapshot taken while batches flow, or a resume point
 * in the middle of the log, never makes the client apply a change twice. The session knows nothing of the transport:
 * it emits domain events, and the sink encodes them and says when the client can take more.
 */
final class WatchSession {
    private static final long NOT_SET = Long.MIN_VALUE;
    /** Bytes of batches gathered into one message at most (well under gRPC's default message limit). */
    private static final int MESSAGE_BYTES = 512 * 1024;

    private final WatchService.Context context;
    private final WatchQuery query;
    private final Set<String> models;
    private final Set<String> names;
    private final WatchSink out;
    private final Runnable onEnd;
    private volatile boolean cancelled;
    private boolean ended;
    private boolean started;
    /** The next broker sequence to look at. */
    private long cursor;
    /** Reading batches older than the ring from the journal (the resume point was there); ends at the ring. */
    private boolean catchingUp;
    /** By engine id: the broker sequence of the last change sent (NOT_SET: none, everything is sent). */
    private long[] delivered = new long[0];
    /** By engine id: 0 not looked at yet, 1 watched, 2 not watched. */
    private byte[] scope = new byte[0];
    /** By engine id: announced to the client (and not removed since). */
    private boolean[] announced = new boolean[0];
    /** Events to send before anything else, in order (started, engines added and removed). */
    private final ArrayDeque<Consumer<WatchSink>> queued = new ArrayDeque<>();
    private final ArrayDeque<Integer> snapshotsDue = new ArrayDeque<>();
    private Snapshot snapshot;
    private int removalsSeen;
    /** The feed's next sequence when the stream started; caught up once the cursor and snapshots are past it. */
    private long startNext;
    private boolean caughtUpSent;
    private Map<String, Integer> idsByName;
    private int idsMapped;
    /** Announcements of engines first met in the batches being gathered, to send before them. */
    private boolean pending;

    WatchSession(WatchService.Context context, WatchQuery query, WatchSink out, Runnable onEnd) {
        this.context = context;
        this.query = query;
        this.models = new HashSet<>(query.models());
        this.names = new HashSet<>(query.engines());
        this.out = out;
        this.onEnd = onEnd;
    }

    void cancel() {
        cancelled = true;
    }

    boolean ended() {
        return ended;
    }

    /** Ends the stream, telling the client why (it resumes from its token). */
    void fail(WatchEndedException reason) {
        if (ended) {
            return;
        }
        ended = true;
        onEnd.run();
        if (!cancelled) {
            out.end(reason);
        }
    }

    /** Sends what the client can take now; true if it did anything. */
    boolean send() {
        if (ended) {
            return false;
        }
        if (cancelled) {
            ended = true;
            onEnd.run();
            return false;
        }
        if (!started) {
            start();
            started = true;
        }
        ChangeFeed feed = context.feed();
        if (!catchingUp && cursor < feed.tail()) {
            context.counters().fellBehind.incrementAndGet();
            fail(new WatchEndedException(Reason.FELL_BEHIND, "watcher fell behind: " + (feed.next() - cursor)
                    + " batches behind, more than the broker keeps in memory (watch.bufferBatches "
                    + feed.capacity() + "); resume from your token"));
            return true;
        }
        boolean worked = false;
        while (out.isReady() && !ended) {
            if (!queued.isEmpty()) {
                queued.poll().accept(out);
            } else if (snapshot != null || !snapshotsDue.isEmpty()) {
                if (!sendSnapshotPart()) {
                    break;
                }
            } else if (!caughtUpSent && cursor >= startNext && feed.sendable() >= startNext) {
                caughtUpSent = true;
                out.caughtUp(cursor - 1);
            } else if (feed.removals() != removalsSeen) {
                announceRemovals();
            } else if (cursor < feed.sendable()) {
                int sent = sendBatches();
                if (sent == ENDED) {
                    return true;
                }
                if (sent == NOTHING_YET) {
                    break;
                }
            } else {
                break;
            }
            worked = true;
        }
        return worked;
    }

    // ---- start: where each engine resumes ----

    private void start() {
        ChangeFeed feed = context.feed();
        removalsSeen = feed.removals();
        long next = feed.next();
        startNext = next;
        List<ResumePlan.Engine> engines = new ArrayList<>();
        for (EngineRegistry.Entry entry : context.registry().live()) {
            if (watched(entry.id())) {
                engines.add(new ResumePlan.Engine(entry.id(), entry.spec().key().toString()));
                announce(entry.id());
            }
        }
        ResumePoint from = query.resumeFrom();
        ResumePlan plan = ResumePlan.plan(from, feed.brokerId(), next, engines, this::held, this::watchedName,
                new FeedLog(feed, context.journal().get()));
        for (ResumePlan.Decision decision : plan.decisions()) {
            if (decision.kind() != ResumePlan.Kind.SNAPSHOT) {
                delivered[decision.engine().id()] = decision.delivered();
            }
        }
        snapshotsDue.addAll(plan.snapshots());
        cursor = plan.cursor();
        for (String name : plan.removed()) {
            int id = Objects.requireNonNullElse(idOf(name), 0);
            queued.add(sink -> sink.engineRemoved(id, name));
        }
        catchingUp = cursor < next;
        int current = plan.count(ResumePlan.Kind.CURRENT);
        int resumed = plan.count(ResumePlan.Kind.FROM_LOG) + plan.count(ResumePlan.Kind.FROM_RING);
        context.counters().resumedEngines.addAndGet(current + resumed);
        WatchSink.Started started = new WatchSink.Started(feed.brokerId(), next - 1, context.granularity(),
                from == null, current, resumed, snapshotsDue.size(), context.weights());
        queued.addFirst(sink -> sink.started(started));
    }

    private ResumePlan.Held held(ResumePlan.Engine engine) {
        BlockIndex.EngineHoldings now = context.index().holdings(engine.id(), false);
        return new ResumePlan.Held(now.incarnation(), now.sequence(), now.fingerprint(), now.brokerSequence());
    }

    /** The ring and the journal as the resume plan reads them. */
    private record FeedLog(ChangeFeed feed, Journal journal) implements ResumePlan.Log {
        @Override
        public long ringTail() {
            return feed.tail();
        }

        @Override
        public ResumePlan.Logged ring(long brokerSequence) {
            FeedEntry entry = feed.entry(brokerSequence);
            return entry == null ? null : new ResumePlan.Logged(entry.engineId(), null, entry.incarnation(),
                    entry.sequence(), entry.fingerprint());
        }

        @Override
        public ResumePlan.Logged journal(long brokerSequence) {
            if (journal == null || brokerSequence < journal.firstSequence()) {
                return null;
            }
            LogRecord record = journal.record(brokerSequence);
            return record == null ? null : new ResumePlan.Logged(-1, record.engine(), record.incarnation(),
                    record.sequence(), record.fingerprint());
        }
    }

    // ---- engines ----

    private void grow(int engineId) {
        if (engineId >= delivered.length) {
            int size = Math.max(engineId + 1, delivered.length * 2 + 8);
            int old = delivered.length;
            delivered = Arrays.copyOf(delivered, size);
            Arrays.fill(delivered, old, size, NOT_SET);
            scope = Arrays.copyOf(scope, size);
            announced = Arrays.copyOf(announced, size);
        }
    }

    private boolean watched(int engineId) {
        grow(engineId);
        if (scope[engineId] == 0) {
            EngineRegistry.Entry entry = context.registry().entry(engineId);
            boolean in = (models.isEmpty() || models.contains(entry.spec().model()))
                    && (names.isEmpty() || names.contains(entry.spec().key().toString()));
            scope[engineId] = (byte) (in ? 1 : 2);
        }
        return scope[engineId] == 1;
    }

    private boolean watchedName(String name) {
        return names.isEmpty() || names.contains(name);
    }

    private void announce(int engineId) {
        if (!announced[engineId]) {
            announced[engineId] = true;
            EngineRegistry.Entry entry = context.registry().entry(engineId);
            String name = entry.spec().key().toString();
            String model = entry.spec().model();
            queued.add(sink -> sink.engineAdded(engineId, name, model));
        }
    }

    private void announceRemovals() {
        removalsSeen = context.feed().removals();
        for (int id = 0; id < announced.length; id++) {
            if (announced[id] && context.registry().entry(id).removed()) {
                announced[id] = false;
                int removed = id;
                String name = context.registry().entry(id).spec().key().toString();
                queued.add(sink -> sink.engineRemoved(removed, name));
            }
        }
    }

    /** An engine's id by its name, or null if this broker never registered it. */
    private Integer idOf(String name) {
        EngineRegistry registry = context.registry();
        int count = registry.idCount();
        if (idsByName == null || idsMapped != count) {
            // Ids are never reused, so the map is stale only when engines were registered since it was built; a
            // name registered again (a new engine at an old name) maps to its latest id.
            idsByName = new HashMap<>();
            for (int e = 0; e < count; e++) {
                idsByName.put(registry.entry(e).spec().key().toString(), e);
            }
            idsMapped = count;
        }
        return idsByName.get(name);
    }

    // ---- snapshots ----

    /** Sends the next part of the snapshot under way (taking the next one first); false if it must wait. */
    private boolean sendSnapshotPart() {
        if (snapshot == null) {
            int engineId = snapshotsDue.poll();
            BlockIndex.EngineHoldings holdings = context.index().holdings(engineId, true);
            delivered[engineId] = holdings.brokerSequence();
            snapshot = new Snapshot(engineId, holdings);
        }
        if (snapshot.holdings.brokerSequence() >= context.feed().sendable()) {
            // It holds a batch the journal has not written yet: sent once it has (a few milliseconds).
            return false;
        }
        int limit = context.limits().snapshotPartHoldings();
        BlockIndex.EngineHoldings h = snapshot.holdings;
        int from = snapshot.offset;
        int to = Math.min(h.keys().length, from + limit);
        out.snapshotPart(new WatchSink.SnapshotPart(snapshot.engineId, h, snapshot.part, from, to));
        snapshot.offset = to;
        snapshot.part++;
        if (to == h.keys().length) {
            snapshot = null;
            context.counters().snapshots.incrementAndGet();
        }
        return true;
    }

    private static final class Snapshot {
        final int engineId;
        final BlockIndex.EngineHoldings holdings;
        int offset;
        int part;

        Snapshot(int engineId, BlockIndex.EngineHoldings holdings) {
            this.engineId = engineId;
            this.holdings = holdings;
        }
    }

    // ---- batches ----

    private static final int SENT = 0;
    private static final int NOTHING_YET = 1;
    private static final int ENDED = 2;

    /** Sends one message of batches from the cursor on: SENT, NOTHING_YET (try later) or ENDED. */
    private int sendBatches() {
        ChangeFeed feed = context.feed();
        List<FeedEntry> message = new ArrayList<>();
        int[] bytes = {0};
        int max = context.limits().maxBatchesPerMessage();
        if (cursor < feed.tail()) {
            Journal journal = context.journal().get();
            if (journal == null || cursor < journal.firstSequence()) {
                context.counters().fellBehind.incrementAndGet();
                fail(new WatchEndedException(Reason.FELL_BEHIND, "the batches after this watcher's position are no"
                        + " longer kept; resume from your token (engines whose batches are gone are sent as"
                        + " snapshots)"));
                return ENDED;
            }
            long end = feed.tail();
            long reached = journal.readRecords(cursor, (int) Math.min(max, end - cursor), (sequence, record) -> {
                Integer id = idOf(record.engine());
                if (id != null && !context.registry().entry(id).removed()) {
                    add(message, new FeedEntry(sequence, id, record.incarnation(), record.sequence(),
                            record.fingerprint(), 0, record.batch()), bytes);
                }
            });
            if (reached == cursor) {
                // The journal has not written that far yet (groups in flight): try again shortly.
                return NOTHING_YET;
            }
            cursor = reached;
        } else {
            catchingUp = false;
            long next = feed.sendable();
            while (cursor < next && message.size() < max && bytes[0] < MESSAGE_BYTES) {
                FeedEntry entry = feed.entry(cursor);
                if (entry == null) {
                    break;
                }
                add(message, entry, bytes);
                cursor++;
            }
            if (cursor < feed.tail()) {
                // Written over while gathered: the next round ends the stream, the client resumes from its token.
                return SENT;
            }
        }
        if (message.size() > 0) {
            context.counters().batches.addAndGet(message.size());
            flushAnnouncements();
            out.changes(message);
        }
        return SENT;
    }

    /** Adds an entry to the message if its engine is watched and the client does not have it yet. */
    private void add(List<FeedEntry> message, FeedEntry entry, int[] bytes) {
        int id = entry.engineId();
        if (!watched(id) || entry.brokerSequence() <= delivered[id] && delivered[id] != NOT_SET) {
            return;
        }
        if (!announced[id]) {
            // An engine that joined after the stream started: announced before its first batch (queued first).
            announce(id);
            pending = true;
        }
        delivered[id] = entry.brokerSequence();
        bytes[0] += out.batchBytes(entry);
        message.add(entry);
    }

    /** Sends the announcements of engines first seen in the message being sent, before it. */
    private void flushAnnouncements() {
        if (pending) {
            pending = false;
            for (Consumer<WatchSink> announcement; (announcement = queued.poll()) != null; ) {
                announcement.accept(out);
            }
        }
    }
}
