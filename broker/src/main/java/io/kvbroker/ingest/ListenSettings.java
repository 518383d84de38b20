package io.kvbroker.ingest;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;

/**
 * Listen mode, where engines connect to kvbroker: the port range bound for their PUB sockets, and how to find each
 * engine's replay socket.
 *
 * @param host address to bind
 * @param port first port (rank 0); 0 when listening is off
 * @param maxRanks ranks per pod, one port each
 * @param replayPort the engines' replay base port, or 0 when they have none
 */
public record ListenSettings(String host, int port, int maxRanks, int replayPort) {
    public static final ListenSettings OFF = new ListenSettings("0.0.0.0", 0, 1, 0);

    public static ListenSettings from(BrokerConfig config) {
        return new ListenSettings(config.get(Settings.INGEST_LISTEN_HOST), config.get(Settings.INGEST_LISTEN_PORT),
                config.get(Settings.INGEST_LISTEN_MAX_RANKS), config.get(Settings.INGEST_LISTEN_REPLAY_PORT));
    }

    public boolean enabled() {
        return port > 0;
    }
}
