package io.kvbroker.ingest;

import io.kvbroker.codec.WireFrames;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * One engine's ZeroMQ sockets, opened with ingest's socket options: in connect mode the SUB on its PUB and the SUB's
 * monitor, and with a replay endpoint the replay DEALER and its monitor; reopened when a connection must not be
 * reused or ZeroMQ gave it up, and closed.
 *
 * <p>Design note: only the ingest thread touches it. Each monitor PAIR is attached before its socket connects, so the
 * first connection event is never missed. Which socket is readable, and what its messages mean, is ingest's and the
 * stream's business: this class only opens, watches for connections lost for good, and closes.
 */
final class EngineSockets {
    /**
     * How long a new connection may take to finish ZeroMQ's greeting before it is dropped and tried again. ZeroMQ's
     * own 30 s default is a long blind spot: on a loaded machine about one loopback connection in twenty stalled in
     * the greeting (JeroMQ on both ends) and only this timer freed it, and an endpoint that accepts TCP but never
     * speaks ZMTP (a wrong port) holds the socket as long. A greeting on a cluster network takes milliseconds.
     */
    static final int HANDSHAKE_TIMEOUT_MS = 5_000;
    /**
     * Replies a replay DEALER holds unread. At the mark JeroMQ stops reading that connection, the engine's ROUTER
     * queues up to its own mark (1000) and then drops: a cut replay, which is asked again from the last reply. So the
     * DEALER holds at most this many times {@code ingest.maxMessageBytes} (it was unbounded: a flood of 1 MiB replies
     * filled a 512 MB heap), and the ingest thread, reading 256 a round, rarely lets it fill. As the ROUTER's own
     * default: at 128, HostilePublisherFuzzTest's hostile engine twice ended holding the wrong blocks (not understood
     * yet; at 1000 and unbounded it passed).
     */
    static final int REPLAY_RECEIVE_HIGH_WATER_MARK = 1_000;
    /**
     * How long after a lost connection ZeroMQ must show it is trying again. JeroMQ 0.6.0 retries a connection that
     * failed or timed out (and says so: EVENT_CONNECT_RETRIED at once), but ends for good one that broke the protocol,
     * which is what a frame over {@code ingest.maxMessageBytes} is, with nothing but EVENT_DISCONNECTED to show for it.
     */
    static final long PROTOCOL_DROP_GRACE_MS = 1_000;
    private static final byte[] EMPTY = new byte[0];

    private final ZContext context;
    private final IngestSettings settings;
    private final int engineId;
    /** The engine's PUB, or null in listen mode (the engine connects to a shared SUB). */
    private final String endpoint;
    /** The engine's replay ROUTER, or null when it has none. */
    private final String replayEndpoint;
    private final ZMQ.Socket sub;
    private final ZMQ.Socket monitor;
    /** The replay DEALER; replaced by a fresh one when a request must not share a connection with the last. */
    private ZMQ.Socket dealer;
    /** The replay DEALER's connection events: replays wait for it rather than give up while it reconnects. */
    private ZMQ.Socket dealerMonitor;
    private int dealerGeneration;
    /** When the SUB's (the DEALER's) connection was lost with no retry seen since; -1 when none is pending. */
    private long subDroppedMs = -1;
    private long dealerDroppedMs = -1;

    /**
     * Creates the SUB and its monitor when {@code endpoint} is given, not connected yet ({@link #connectLive}); the
     * DEALER is opened by {@link #openDealer}.
     */
    EngineSockets(ZContext context, IngestSettings settings, int engineId, String endpoint, String replayEndpoint) {
        this.context = context;
        this.settings = settings;
        this.engineId = engineId;
        this.endpoint = endpoint;
        this.replayEndpoint = replayEndpoint;
        if (endpoint != null) {
            String monitorAddress = "inproc://kvbroker-monitor-" + engineId + "-" + System.identityHashCode(this);
            sub = context.createSocket(SocketType.SUB);
            sub.setLinger(0);
            sub.setRcvHWM(settings.receiveHighWaterMark());
            sub.setMaxMsgSize(settings.maxMessageBytes());
            sub.setReconnectIVL(settings.reconnectIntervalMs());
            sub.setReconnectIVLMax(settings.reconnectIntervalMaxMs());
            sub.setHandshakeIvl(HANDSHAKE_TIMEOUT_MS);
            sub.subscribe(EMPTY);
            sub.monitor(monitorAddress, ZMQ.EVENT_CONNECTED | ZMQ.EVENT_HANDSHAKE_PROTOCOL
                    | ZMQ.EVENT_DISCONNECTED | ZMQ.EVENT_CONNECT_RETRIED);
            monitor = context.createSocket(SocketType.PAIR);
            monitor.connect(monitorAddress);
        } else {
            sub = null;
            monitor = null;
        }
    }

    /** The SUB, or null in listen mode. */
    ZMQ.Socket sub() {
        return sub;
    }

    ZMQ.Socket monitor() {
        return monitor;
    }

    /** The replay DEALER, or null when the engine has no replay endpoint. */
    ZMQ.Socket dealer() {
        return dealer;
    }

    ZMQ.Socket dealerMonitor() {
        return dealerMonitor;
    }

    boolean canReplay() {
        return replayEndpoint != null;
    }

    /** Connects the SUB to the engine's PUB (connect mode). */
    void connectLive() {
        if (sub != null) {
            sub.connect(endpoint);
        }
    }

    /** A new DEALER to the replay endpoint, monitored from before it connects. */
    void openDealer() {
        dealer = context.createSocket(SocketType.DEALER);
        dealer.setLinger(0);
        dealer.setRcvHWM(REPLAY_RECEIVE_HIGH_WATER_MARK);
        dealer.setMaxMsgSize(settings.maxMessageBytes());
        dealer.setReconnectIVL(settings.reconnectIntervalMs());
        dealer.setReconnectIVLMax(settings.reconnectIntervalMaxMs());
        dealer.setHandshakeIvl(HANDSHAKE_TIMEOUT_MS);
        String monitorAddress = "inproc://kvbroker-replay-monitor-" + engineId + "-"
                + System.identityHashCode(this) + "-" + dealerGeneration++;
        dealer.monitor(monitorAddress, ZMQ.EVENT_CONNECTED | ZMQ.EVENT_DISCONNECTED | ZMQ.EVENT_CONNECT_RETRIED);
        dealerMonitor = context.createSocket(SocketType.PAIR);
        dealerMonitor.connect(monitorAddress);
        dealer.connect(replayEndpoint);
    }

    /** Closes the DEALER and its monitor (before {@link #openDealer} opens a fresh pair). */
    void closeDealer() {
        dealerDroppedMs = -1;
        dealer.close();
        dealerMonitor.close();
    }

    /** Queues a replay request; non-blocking: if it cannot be queued, the replay times out and is asked again. */
    void sendReplayRequest(long fromSequence) {
        if (dealer.send(EMPTY, ZMQ.SNDMORE | ZMQ.DONTWAIT)) {
            dealer.send(WireFrames.sequenceFrame(fromSequence), ZMQ.DONTWAIT);
        }
    }

    /** The SUB's (or, {@code replay}, the DEALER's) connection was lost: ZeroMQ should soon say it tries again. */
    void lost(boolean replay, long nowMs) {
        if (replay) {
            dealerDroppedMs = nowMs;
        } else {
            subDroppedMs = nowMs;
        }
    }

    /** The SUB's (the DEALER's) connection is up again, or ZeroMQ is trying: not dropped for good. */
    void retrying(boolean replay) {
        if (replay) {
            dealerDroppedMs = -1;
        } else {
            subDroppedMs = -1;
        }
    }

    /**
     * Connects the SUB again if its connection was lost with no retry within {@link #PROTOCOL_DROP_GRACE_MS}: ZeroMQ
     * ended it for a protocol error. Returns whether it did.
     */
    boolean reviveLive(long nowMs) {
        if (subDroppedMs < 0 || nowMs - subDroppedMs < PROTOCOL_DROP_GRACE_MS) {
            return false;
        }
        subDroppedMs = -1;
        sub.disconnect(endpoint);
        sub.connect(endpoint);
        return true;
    }

    /**
     * Whether the DEALER's connection was lost with no retry within {@link #PROTOCOL_DROP_GRACE_MS} (ZeroMQ ended it
     * for a protocol error); if so it is closed, for the caller to open a fresh one.
     */
    boolean replayDroppedForGood(long nowMs) {
        if (dealerDroppedMs < 0 || nowMs - dealerDroppedMs < PROTOCOL_DROP_GRACE_MS) {
            return false;
        }
        closeDealer();
        return true;
    }

    void close() {
        if (sub != null) {
            sub.close();
            monitor.close();
        }
        if (dealer != null) {
            dealer.close();
            dealerMonitor.close();
        }
    }

    /**
     * Listen mode: binds the SUB for one rank, shared by every engine of that rank, with the same options, and a
     * monitor that reports dropped publisher connections.
     */
    static Listening listen(ZContext context, IngestSettings settings, int rank) {
        ListenSettings listen = settings.listen();
        ZMQ.Socket sub = context.createSocket(SocketType.SUB);
        sub.setLinger(0);
        sub.setRcvHWM(settings.receiveHighWaterMark());
        sub.setMaxMsgSize(settings.maxMessageBytes());
        sub.setHandshakeIvl(HANDSHAKE_TIMEOUT_MS);
        sub.subscribe(EMPTY);
        String monitorAddress = "inproc://kvbroker-listen-monitor-" + rank + "-" + System.identityHashCode(sub);
        sub.monitor(monitorAddress, ZMQ.EVENT_DISCONNECTED);
        ZMQ.Socket monitor = context.createSocket(SocketType.PAIR);
        monitor.connect(monitorAddress);
        sub.bind("tcp://" + listen.host() + ":" + (listen.port() + rank));
        return new Listening(rank, sub, monitor);
    }

    /** Listen mode: the SUB bound for one rank and its monitor. */
    record Listening(int rank, ZMQ.Socket sub, ZMQ.Socket monitor) {
        void close() {
            sub.close();
            monitor.close();
        }
    }
}
