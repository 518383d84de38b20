package io.kvbroker.discovery;

import java.util.function.IntConsumer;

/** What discovery drives: ingest, which subscribes to, drops and restarts engines by id (on its own thread). */
public interface EngineTarget {

    /** Start ingesting a newly registered engine. */
    void add(int engineId);

    /** Stop ingesting an engine and clear what it held; its id is already retired in the registry. */
    void remove(int engineId);

    /** The engine's process was replaced: clear what it held and start a new incarnation. */
    void restart(int engineId);

    /** A target from three operations, e.g. {@code of(ingest::add, ingest::remove, ingest::restart)}. */
    static EngineTarget of(IntConsumer add, IntConsumer remove, IntConsumer restart) {
        return new EngineTarget() {
            @Override
            public void add(int engineId) {
                add.accept(engineId);
            }

            @Override
            public void remove(int engineId) {
                remove.accept(engineId);
            }

            @Override
            public void restart(int engineId) {
                restart.accept(engineId);
            }
        };
    }
}
