package io.kvbroker.watch;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.journal.Journal;
import io.kvbroker.journal.LogRecord;
import io.kvbroker.proto.v1.ChangeBatches;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EnginePosition;
import io.kvbroker.proto.v1.EngineRemoved;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchRequest;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import io.kvbroker.proto.v1.WatchedEngine;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One Watch stream: where it resumes each engine, then its snapshots, then the batches from the ring (or, while
 * catching up, from the journal), as fast as the client reads. Only its sending thread touches it, except
 * {@link #cancel}.
 *
 * <p>Design note: the stream keeps, per engine, the broker sequence of the last change the client has of it
 * ({@code delivered}); a batch is sent only if it is later, so a snapshot taken while batches flow, or a resume point
 * in the middle of the log, never makes the client apply a change twice. Each engine resumes on its own: exactly
 * (its position is this broker's current state of it), from the log (the batch at its position is found, by broker
 * sequence on the broker that issued the token, or by engine sequence and payload fingerprint in the ring on any
 * other), or with a snapshot of that engine alone.
 */
final class WatchSession {
    private static final long NOT_SET = Long.MIN_VALUE;
    /** Bytes of batches gathered into one message at most (well under gRPC's default message limit). */
    private static final int MESSAGE_BYTES = 512 * 1024;

    private final WatchService.Context context;
    private final ResumeToken token;
    private final Set<String> models;
    private final Set<String> names;
    private final ServerCallStreamObserver<WatchResponse> out;
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
    private final ArrayDeque<WatchResponse> queued = new ArrayDeque<>();
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

    WatchSession(WatchService.Context context, WatchRequest request, ResumeToken token,
            ServerCallStreamObserver<WatchResponse> out, Runnable onEnd) {
        this.context = context;
        this.token = token;
        this.models = new HashSet<>(request.getModelsList());
        this.names = new HashSet<>(request.getEnginesList());
        this.out = out;
        this.onEnd = onEnd;
    }

    void cancel() {
        cancelled = true;
    }

    boolean ended() {
        return ended;
    }

    /** Ends the stream with {@code status} (the client resumes from its token). */
    void fail(Status status) {
        if (ended) {
            return;
        }
        ended = true;
        onEnd.run();
        if (!cancelled) {
            try {
                out.onError(status.asRuntimeException());
            } catch (RuntimeException e) {
                // The call is already closed (cancelled under us): nothing to tell.
            }
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
            fail(Status.ABORTED.withDescription("watcher fell behind: " + (feed.next() - cursor) + " batches"
                    + " behind, more than the broker keeps in memory (watch.bufferBatches " + feed.capacity()
                    + "); resume from your token"));
            return true;
        }
        boolean worked = false;
        while (out.isReady() && !ended) {
            if (!queued.isEmpty()) {
                out.onNext(queued.poll());
            } else if (snapshot != null || !snapshotsDue.isEmpty()) {
                if (!sendSnapshotPart()) {
                    break;
                }
            } else if (!caughtUpSent && cursor >= startNext && feed.sendable() >= startNext) {
                caughtUpSent = true;
                out.onNext(WatchResponse.newBuilder().setCaughtUp(io.kvbroker.proto.v1.CaughtUp.newBuilder()
                        .setBrokerSequence(cursor - 1)).build());
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
        BlockIndex index = context.index();
        removalsSeen = feed.removals();
        long next = feed.next();
        cursor = next;
        startNext = next;
        boolean sameBroker = token != null && token.getBrokerId().equals(feed.brokerId());
        Map<String, EnginePosition> positions = new HashMap<>();
        if (token != null) {
            token.getEnginesList().forEach(p -> positions.put(p.getEngine(), p));
        }
        int current = 0;
        int resumed = 0;
        Map<Integer, EnginePosition> search = new HashMap<>();
        List<EngineRegistry.Entry> engines = context.registry().live();
        Set<String> present = new HashSet<>();
        for (EngineRegistry.Entry entry : engines) {
            if (!watched(entry.id())) {
                continue;
            }
            String name = entry.spec().key().toString();
            present.add(name);
            announce(entry.id());
            EnginePosition position = positions.get(name);
            if (position == null) {
                snapshotsDue.add(entry.id());
                continue;
            }
            BlockIndex.EngineHoldings now = index.holdings(entry.id(), false);
            if (matches(now, position, sameBroker)) {
                delivered[entry.id()] = now.brokerSequence();
                current++;
                continue;
            }
            long from = sameBroker ? logged(entry.id(), name, position) : NOT_SET;
            if (from != NOT_SET) {
                delivered[entry.id()] = from;
                cursor = Math.min(cursor, from + 1);
                resumed++;
            } else {
                search.put(entry.id(), position);
            }
        }
        if (!search.isEmpty()) {
            // Any broker: the batch at each position, by engine sequence and payload fingerprint, in the ring.
            Map<Integer, Long> found = new HashMap<>();
            for (long s = feed.tail(); s < next; s++) {
                FeedEntry entry = feed.entry(s);
                EnginePosition position = entry == null ? null : search.get(entry.engineId());
                if (position != null && entry.sequence() >= 0 && entry.sequence() == position.getSequence()
                        && entry.fingerprint() == position.getFingerprint()) {
                    found.put(entry.engineId(), s);
                }
            }
            for (Integer id : search.keySet()) {
                Long at = found.get(id);
                if (at != null) {
                    delivered[id] = at;
                    cursor = Math.min(cursor, at + 1);
                    resumed++;
                } else {
                    snapshotsDue.add(id);
                }
            }
        }
        positions.keySet().stream().filter(name -> !present.contains(name) && watchedName(name)).sorted()
                .forEach(name -> queued.add(WatchResponse.newBuilder().setEngineRemoved(EngineRemoved.newBuilder()
                        .setName(name).setEngineId(java.util.Objects.requireNonNullElse(idOf(name), 0))).build()));
        catchingUp = cursor < next;
        context.counters().resumedEngines.addAndGet(current + resumed);
        WatchStarted.Builder started = WatchStarted.newBuilder().setBrokerId(feed.brokerId())
                .setBrokerSequence(next - 1).setGranularity(context.granularity()).setWholeSnapshot(token == null)
                .setEnginesCurrent(current).setEnginesResumed(resumed).setEnginesSnapshotted(snapshotsDue.size())
                .setWeightGpu(context.weights().gpu()).setWeightCpu(context.weights().cpu())
                .setWeightStorage(context.weights().storage()).setWeightOther(context.weights().other());
        queued.addFirst(WatchResponse.newBuilder().setStarted(started).build());
    }

    /** Whether the index holds the engine exactly at the client's position. */
    private static boolean matches(BlockIndex.EngineHoldings now, EnginePosition position, boolean sameBroker) {
        if (sameBroker && now.brokerSequence() == position.getBrokerSequence()
                && now.incarnation() == position.getIncarnation() && now.sequence() == position.getSequence()) {
            return true;
        }
        // On another broker a batch is named by its engine sequence and payload fingerprint; a reset has neither.
        return now.sequence() >= 0 && now.sequence() == position.getSequence()
                && now.fingerprint() == position.getFingerprint();
    }

    /**
     * The broker sequence of the batch at {@code position} if this broker logged it there (ring or journal), so
     * everything after it can be sent; NOT_SET otherwise (trimmed, or the position came from a batch this broker
     * lost in a crash and numbered differently since).
     */
    private long logged(int engineId, String name, EnginePosition position) {
        long at = position.getBrokerSequence();
        FeedEntry entry = context.feed().entry(at);
        if (entry != null) {
            return entry.engineId() == engineId && entry.incarnation() == position.getIncarnation()
                    && entry.sequence() == position.getSequence() && entry.fingerprint() == position.getFingerprint()
                    ? at : NOT_SET;
        }
        Journal journal = context.journal().get();
        if (journal == null || at < journal.firstSequence()) {
            return NOT_SET;
        }
        LogRecord record = journal.record(at);
        return record != null && record.engine().equals(name) && record.incarnation() == position.getIncarnation()
                && record.sequence() == position.getSequence() && record.fingerprint() == position.getFingerprint()
                ? at : NOT_SET;
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
            queued.add(WatchResponse.newBuilder().setEngineAdded(WatchedEngine.newBuilder().setEngineId(engineId)
                    .setName(entry.spec().key().toString()).setModel(entry.spec().model())).build());
        }
    }

    private void announceRemovals() {
        removalsSeen = context.feed().removals();
        for (int id = 0; id < announced.length; id++) {
            if (announced[id] && context.registry().entry(id).removed()) {
                announced[id] = false;
                queued.add(WatchResponse.newBuilder().setEngineRemoved(EngineRemoved.newBuilder().setEngineId(id)
                        .setName(context.registry().entry(id).spec().key().toString())).build());
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
        EngineSnapshot.Builder part = EngineSnapshot.newBuilder().setEngineId(snapshot.engineId)
                .setIncarnation(h.incarnation()).setSequence(h.sequence()).setFingerprint(h.fingerprint())
                .setBrokerSequence(h.brokerSequence()).setPart(snapshot.part).setLastPart(to == h.keys().length);
        for (int i = from; i < to; i++) {
            int value = h.values()[i];
            part.addKeys(h.keys()[i]).addSpans(value >>> 4).addMedia(value & 0xF);
        }
        out.onNext(WatchResponse.newBuilder().setSnapshot(part).build());
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
        ChangeBatches.Builder message = ChangeBatches.newBuilder();
        int[] bytes = {0};
        int max = context.limits().maxBatchesPerMessage();
        if (cursor < feed.tail()) {
            Journal journal = context.journal().get();
            if (journal == null || cursor < journal.firstSequence()) {
                context.counters().fellBehind.incrementAndGet();
                fail(Status.ABORTED.withDescription("the batches after this watcher's position are no longer kept;"
                        + " resume from your token (engines whose batches are gone are sent as snapshots)"));
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
            while (cursor < next && message.getBatchesCount() < max && bytes[0] < MESSAGE_BYTES) {
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
        if (message.getBatchesCount() > 0) {
            context.counters().batches.addAndGet(message.getBatchesCount());
            flushAnnouncements();
            out.onNext(WatchResponse.newBuilder().setChanges(message).build());
        }
        return SENT;
    }

    /** Adds an entry to the message if its engine is watched and the client does not have it yet. */
    private void add(ChangeBatches.Builder message, FeedEntry entry, int[] bytes) {
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
        EngineBatch batch = entry.toMessage();
        bytes[0] += batch.getSerializedSize();
        message.addBatches(batch);
    }

    /** Sends the announcements of engines first seen in the message being sent, before it. */
    private void flushAnnouncements() {
        if (pending) {
            pending = false;
            for (WatchResponse announcement; (announcement = queued.poll()) != null; ) {
                out.onNext(announcement);
            }
        }
    }
}
