package io.kvbroker.client;

import com.google.protobuf.InvalidProtocolBufferException;
import io.kvbroker.proto.v1.ChangeBatches;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EnginePosition;
import io.kvbroker.proto.v1.EngineRemoved;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import io.kvbroker.proto.v1.WatchedEngine;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Where a watcher stands: per engine name the position of what it applied, the broker those positions come from,
 * and the resume token made of them.
 *
 * <p>Design note: a snapshot's part 0 drops what the watcher held of the engine, so the engine's position is
 * forgotten there, not at its last part: a stream broken between the two resumes the engine with a fresh snapshot
 * instead of applying later batches on top of a half snapshot. Positions of engines a stream does not mention are
 * kept (any replica checks them by name, sequence and fingerprint). Thread-safe: one thread applies messages, any
 * thread reads the token; every method holds the instance's monitor for a few map operations.
 */
public final class WatchPositions implements WatchListener {
    private final Map<String, EnginePosition> positions = new TreeMap<>();
    /** This stream's engine ids to names (ids are per broker). */
    private final Map<Integer, String> streamNames = new HashMap<>();
    private String brokerId = "";
    private boolean started;
    private long startedBrokerSequence;
    private long appliedBrokerSequence;
    /** The current stream's {@code caught_up} arrived. */
    private boolean caughtUpMarked;
    private int snapshotsExpected;
    private int snapshotsCompleted;
    private int enginesResumed;

    /** Positions from a serialized {@link ResumeToken}; empty bytes for none. */
    public static WatchPositions fromToken(byte[] token) {
        WatchPositions p = new WatchPositions();
        if (token.length > 0) {
            try {
                ResumeToken parsed = ResumeToken.parseFrom(token);
                p.brokerId = parsed.getBrokerId();
                for (EnginePosition position : parsed.getEnginesList()) {
                    p.positions.put(position.getEngine(), position);
                }
            } catch (InvalidProtocolBufferException e) {
                throw new IllegalArgumentException("not a kvbroker resume token: " + e.getMessage(), e);
            }
        }
        return p;
    }

    /** Positions from a token in URL-safe base64 ({@link #tokenBase64}); empty for none. */
    public static WatchPositions fromBase64(String token) {
        try {
            return fromToken(Base64.getUrlDecoder().decode(token.strip()));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("not a kvbroker resume token: " + e.getMessage(), e);
        }
    }

    /** The serialized {@link ResumeToken}: empty when nothing is held (the next stream starts with a snapshot). */
    public synchronized byte[] token() {
        if (positions.isEmpty() && brokerId.isEmpty()) {
            return new byte[0];
        }
        return ResumeToken.newBuilder().setBrokerId(brokerId).addAllEngines(positions.values()).build().toByteArray();
    }

    /** {@link #token()} in URL-safe base64 without padding, for command lines and configuration. */
    public String tokenBase64() {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(token());
    }

    /** The position applied of the engine named {@code name} ("pod/rank"), or null. */
    public synchronized EnginePosition position(String name) {
        return positions.get(name);
    }

    /** Every engine's position, by name. */
    public synchronized Map<String, EnginePosition> positions() {
        return Map.copyOf(positions);
    }

    /** The broker the latest stream came from ({@code WatchStarted.broker_id}), or empty. */
    public synchronized String brokerId() {
        return brokerId;
    }

    /** The broker sequence at which the current stream started. */
    public synchronized long startedBrokerSequence() {
        return startedBrokerSequence;
    }

    /** The highest broker sequence applied in the current stream (a batch or a whole snapshot). */
    public synchronized long appliedBrokerSequence() {
        return appliedBrokerSequence;
    }

    /**
     * Whether the current stream has delivered the index as of its start: the broker said so ({@code caught_up}), or
     * every snapshot it announced is whole and, when it resumed engines from the log, a batch at or past the start's
     * broker sequence has been applied.
     */
    public synchronized boolean caughtUp() {
        return started && (caughtUpMarked || snapshotsCompleted >= snapshotsExpected
                && (enginesResumed == 0 || appliedBrokerSequence >= startedBrokerSequence));
    }

    @Override
    public void onMessage(WatchResponse message) {
        switch (message.getEventCase()) {
            case STARTED -> started(message.getStarted());
            case ENGINE_ADDED -> engineAdded(message.getEngineAdded());
            case SNAPSHOT -> snapshot(message.getSnapshot());
            case CHANGES -> changes(message.getChanges());
            case ENGINE_REMOVED -> engineRemoved(message.getEngineRemoved());
            case CAUGHT_UP -> caughtUpMarked();
            default -> {
                // A message kind of a later protocol: nothing to apply.
            }
        }
    }

    synchronized void caughtUpMarked() {
        caughtUpMarked = true;
    }

    synchronized void started(WatchStarted started) {
        this.started = true;
        caughtUpMarked = false;
        brokerId = started.getBrokerId();
        startedBrokerSequence = started.getBrokerSequence();
        appliedBrokerSequence = 0;
        snapshotsExpected = started.getEnginesSnapshotted();
        snapshotsCompleted = 0;
        enginesResumed = started.getEnginesResumed();
        streamNames.clear();
        if (started.getWholeSnapshot()) {
            // Every watched engine comes again; what is not sent is not watched any more.
            positions.clear();
        }
    }

    synchronized void engineAdded(WatchedEngine engine) {
        streamNames.put(engine.getEngineId(), engine.getName());
    }

    synchronized void snapshot(EngineSnapshot snapshot) {
        String name = streamNames.get(snapshot.getEngineId());
        if (name == null) {
            return;
        }
        if (snapshot.getPart() == 0) {
            positions.remove(name);
        }
        if (snapshot.getLastPart()) {
            positions.put(name, position(name, snapshot.getIncarnation(), snapshot.getSequence(),
                    snapshot.getFingerprint(), snapshot.getBrokerSequence()));
            snapshotsCompleted++;
            appliedBrokerSequence = Math.max(appliedBrokerSequence, snapshot.getBrokerSequence());
        }
    }

    synchronized void changes(ChangeBatches changes) {
        for (EngineBatch batch : changes.getBatchesList()) {
            batch(batch);
        }
    }

    synchronized void batch(EngineBatch batch) {
        String name = streamNames.get(batch.getEngineId());
        if (name != null) {
            positions.put(name, position(name, batch.getIncarnation(), batch.getSequence(), batch.getFingerprint(),
                    batch.getBrokerSequence()));
        }
        appliedBrokerSequence = Math.max(appliedBrokerSequence, batch.getBrokerSequence());
    }

    synchronized void engineRemoved(EngineRemoved removed) {
        String name = streamNames.remove(removed.getEngineId());
        positions.remove(removed.getName().isEmpty() && name != null ? name : removed.getName());
    }

    private static EnginePosition position(String name, long incarnation, long sequence, long fingerprint,
            long brokerSequence) {
        return EnginePosition.newBuilder().setEngine(name).setIncarnation(incarnation).setSequence(sequence)
                .setFingerprint(fingerprint).setBrokerSequence(brokerSequence).build();
    }
}
