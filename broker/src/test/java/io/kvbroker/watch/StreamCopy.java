package io.kvbroker.watch;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EnginePosition;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.ResumeToken;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The tests' own copy of what a Watch stream says, written from the proto's comments alone (independent of the
 * client stub): holdings by engine name, positions, the resume token, and checks that no batch is missed or applied
 * twice: within an incarnation an engine's batches come with consecutive sequences, after a snapshot or reset any.
 */
public final class StreamCopy {
    public final Map<String, Map<Long, Integer>> holdings = new HashMap<>();
    final Map<String, EnginePosition> positions = new HashMap<>();
    final List<WatchStarted> starts = new ArrayList<>();
    private final Map<Integer, String> names = new HashMap<>();
    private final Map<String, Map<Long, Integer>> partial = new HashMap<>();
    private String brokerId = "";
    public long batches;
    public long snapshots;
    long caughtUps;

    public void apply(WatchResponse response) {
        switch (response.getEventCase()) {
            case STARTED -> {
                starts.add(response.getStarted());
                brokerId = response.getStarted().getBrokerId();
                names.clear();
            }
            case ENGINE_ADDED -> names.put(response.getEngineAdded().getEngineId(),
                    response.getEngineAdded().getName());
            case SNAPSHOT -> applySnapshot(response.getSnapshot());
            case CHANGES -> response.getChanges().getBatchesList().forEach(this::applyBatch);
            case ENGINE_REMOVED -> {
                holdings.remove(response.getEngineRemoved().getName());
                positions.remove(response.getEngineRemoved().getName());
            }
            case CAUGHT_UP -> caughtUps++;
            default -> throw new AssertionError("unexpected message " + response);
        }
    }

    private String name(int engineId) {
        String name = names.get(engineId);
        assertThat(name).as("engine %d announced before its data", engineId).isNotNull();
        return name;
    }

    private void applySnapshot(EngineSnapshot part) {
        String name = name(part.getEngineId());
        if (part.getPart() == 0) {
            partial.put(name, new HashMap<>());
        }
        Map<Long, Integer> held = partial.get(name);
        assertThat(held).as("snapshot of %s starts at part 0", name).isNotNull();
        for (int i = 0; i < part.getKeysCount(); i++) {
            held.put(part.getKeys(i), part.getSpans(i) << 4 | part.getMedia(i));
        }
        if (part.getLastPart()) {
            holdings.put(name, partial.remove(name));
            positions.put(name, EnginePosition.newBuilder().setEngine(name).setIncarnation(part.getIncarnation())
                    .setSequence(part.getSequence()).setFingerprint(part.getFingerprint())
                    .setBrokerSequence(part.getBrokerSequence()).build());
            snapshots++;
        }
    }

    private void applyBatch(EngineBatch batch) {
        String name = name(batch.getEngineId());
        EnginePosition last = positions.get(name);
        if (batch.getSequence() >= 0 && last != null && last.getSequence() >= 0) {
            assertThat(batch.getSequence()).as("%s: batch after %d (no gap, nothing twice)", name,
                    last.getSequence()).isEqualTo(last.getSequence() + 1);
        }
        Map<Long, Integer> held = holdings.computeIfAbsent(name, n -> new HashMap<>());
        if (batch.getCleared()) {
            held.clear();
        }
        for (int i = 0; i < batch.getKeysCount(); i++) {
            if (batch.getMedia(i) == 0) {
                held.remove(batch.getKeys(i));
            } else {
                held.put(batch.getKeys(i), batch.getSpans(i) << 4 | batch.getMedia(i));
            }
        }
        positions.put(name, EnginePosition.newBuilder().setEngine(name).setIncarnation(batch.getIncarnation())
                .setSequence(batch.getSequence()).setFingerprint(batch.getFingerprint())
                .setBrokerSequence(batch.getBrokerSequence()).build());
        batches++;
    }

    public ResumeToken token() {
        return ResumeToken.newBuilder().setBrokerId(brokerId).addAllEngines(positions.values()).build();
    }

    WatchStarted lastStart() {
        return starts.get(starts.size() - 1);
    }
}
