package io.kvbroker.ingest;

/** Where an engine's stream stands, as ListEngines and the metrics report it. */
public enum EngineState {
    /** Configured, nothing heard yet. */
    CONNECTING,
    /** Connected to the engine's PUB (ZeroMQ's greeting done), nothing published yet: reachable but quiet. */
    CONNECTED,
    /** Replaying history (first contact, a gap, or verifying a reconnect) before applying live batches. */
    CATCHING_UP,
    /** Applying live batches in order. */
    LIVE,
    /** Nothing heard for {@code ingest.silentAfterMs}: not the same as an empty cache. */
    SILENT,
    /** Cleared after a gap that could not be replayed, waiting for the next batch to start again. */
    VOID,
    /** Removed; its id is retired. */
    REMOVED;

    /** Lower-case name for metrics labels and logs. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
