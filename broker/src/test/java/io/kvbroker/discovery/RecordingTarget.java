package io.kvbroker.discovery;

import java.util.ArrayList;
import java.util.List;

/** Records what discovery asked ingest to do, in order, as "add 0", "remove 0", "restart 0". */
final class RecordingTarget implements EngineTarget {
    private final List<String> calls = new ArrayList<>();

    @Override
    public synchronized void add(int engineId) {
        calls.add("add " + engineId);
    }

    @Override
    public synchronized void remove(int engineId) {
        calls.add("remove " + engineId);
    }

    @Override
    public synchronized void restart(int engineId) {
        calls.add("restart " + engineId);
    }

    /** The calls so far, and forgets them. */
    synchronized List<String> take() {
        List<String> taken = List.copyOf(calls);
        calls.clear();
        return taken;
    }

    synchronized List<String> calls() {
        return List.copyOf(calls);
    }
}
