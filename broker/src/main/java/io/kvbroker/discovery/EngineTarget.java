package io.kvbroker.discovery;

/** What discovery drives: ingest, which subscribes to, drops and restarts engines by id (on its own thread). */
public interface EngineTarget {

    /** Start ingesting a newly registered engine. */
    void add(int engineId);

    /** Stop ingesting an engine and clear what it held; its id is already retired in the registry. */
    void remove(int engineId);

    /** The engine's process was replaced: clear what it held and start a new incarnation. */
    void restart(int engineId);
}
