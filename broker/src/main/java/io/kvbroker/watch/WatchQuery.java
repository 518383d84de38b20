package io.kvbroker.watch;

import java.util.List;

/**
 * What a Watch stream is asked for: where to resume (none: a snapshot of everything) and which engines to watch.
 *
 * @param resumeFrom the watcher's resume point, or null to start with a whole snapshot
 * @param models models to watch; empty: all
 * @param engines engines to watch by stable name {@code pod/rank}; empty: all
 */
public record WatchQuery(ResumePoint resumeFrom, List<String> models, List<String> engines) {
    public WatchQuery {
        models = List.copyOf(models);
        engines = List.copyOf(engines);
    }
}
