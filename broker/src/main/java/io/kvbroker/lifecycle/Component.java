package io.kvbroker.lifecycle;

import java.time.Duration;

/** A part of the daemon with a start and a stop, started in order and stopped in reverse by {@link Lifecycle}. */
public interface Component {

    /** Short name for logs. */
    String name();

    /** Opens what the component needs; on failure it closes what it opened itself before throwing. */
    void start() throws Exception;

    /**
     * Drains and closes, finishing within {@code budget} where it can: the lifecycle stops waiting after that and
     * moves on to the next component.
     */
    void stop(Duration budget) throws Exception;
}
