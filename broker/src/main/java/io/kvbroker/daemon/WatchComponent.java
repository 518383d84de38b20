package io.kvbroker.daemon;

import io.kvbroker.lifecycle.Component;
import io.kvbroker.watch.WatchService;
import java.time.Duration;

/** Watch's sending threads as a lifecycle step: started after the gRPC server, stopped before it. */
final class WatchComponent implements Component {
    private final WatchService watch;

    WatchComponent(WatchService watch) {
        this.watch = watch;
    }

    @Override
    public String name() {
        return "watch";
    }

    @Override
    public void start() {
        watch.start();
    }

    @Override
    public void stop(Duration budget) {
        watch.close();
    }
}
