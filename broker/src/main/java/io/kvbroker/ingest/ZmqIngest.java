package io.kvbroker.ingest;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.codec.WireFrames.LiveMessage;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.daemon.Component;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.net.AddressBlock;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Takes in every engine's PUB stream and replay ROUTER on one thread with one poller, and feeds each engine's
 * messages to its {@link EngineStream}.
 *
 * <p>Design note: connect mode gives each engine a SUB, a replay DEALER and a monitor PAIR for each of them (the
 * SUB's connection events start first-contact and reconnect replays; the DEALER's keep a replay from giving up while
 * its socket reconnects); listen mode binds one SUB per data-parallel rank and tells engines
 * apart by (topic, rank), each with its own replay DEALER. All sockets sit in one slot table on one poller: JeroMQ
 * sockets have no threads of their own, so the process runs the ingest thread plus the context's one I/O thread and
 * reaper whatever the number of engines. Messages are decoded on this thread straight from the received frames (no
 * hand-off, no copy). Engines are added and removed through a queue the loop drains, so only this thread touches
 * sockets.
 */
public final class ZmqIngest implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(ZmqIngest.class);
    private static final long TICK_MS = 10;
    /** Messages taken from one socket per poll round, so a flooding engine cannot starve the others. */
    private static final int BURST = 256;
    private static final int MAX_FRAMES = 8;
    private static final byte[] EMPTY = new byte[0];
    /** Listen mode: this many restarts by sequence within the window means two engines share a topic. */
    private static final int SHARED_TOPIC_RESTARTS = 3;
    private static final long SHARED_TOPIC_WINDOW_MS = 10_000;
    private static final long REFUSAL_LOG_INTERVAL_MS = 60_000;
    /**
     * How long a new connection may take to finish ZeroMQ's greeting before it is dropped and tried again. ZeroMQ's
     * own 30 s default is a long blind spot: on a loaded machine about one loopback connection in twenty stalled in
     * the greeting (JeroMQ on both ends) and only this timer freed it, and an endpoint that accepts TCP but never
     * speaks ZMTP (a wrong port) holds the socket as long. A greeting on a cluster network takes milliseconds.
     */
    static final int HANDSHAKE_TIMEOUT_MS = 5_000;
    /** Room for about 10,000 engines; each socket also holds a few file descriptors (see docs/operations.md). */
    private static final int MAX_SOCKETS = 65_536;
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

    private final EngineRegistry registry;
    private final IngestSink sink;
    private final EngineStream.Limits limits;
    private final ListenSettings listen;
    private final int receiveHighWaterMark;
    private final long maxMessageBytes;
    private final int reconnectIntervalMs;
    private final int reconnectIntervalMaxMs;
    private final LongSupplier clock;
    private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
    private final Map<Integer, EngineStream> streams = new ConcurrentHashMap<>();
    /** Persisted positions for engines whose streams are not created yet. */
    private final Map<Integer, EngineStream.Resume> resumes = new ConcurrentHashMap<>();
    private final List<Connection> connections = new ArrayList<>();
    private final List<ListenSocket> listenSockets = new ArrayList<>();
    private final KvEventDecoder decoder = new KvEventDecoder();
    private final byte[][] frames = new byte[MAX_FRAMES][];
    private final AtomicLong refusedEmptyTopic = new AtomicLong();
    private final AtomicLong refusedSharedTopic = new AtomicLong();
    private final AtomicLong refusedUnknownTopic = new AtomicLong();
    private final AtomicLong refusedUnknownAddress = new AtomicLong();
    private final AtomicLong refusedSharedTopicMessages = new AtomicLong();
    private final AtomicLong refusedMalformed = new AtomicLong();
    private final AtomicLong publisherDisconnects = new AtomicLong();
    /** Listen mode: the allowed topics as one pattern; null when any topic may connect. */
    private final Pattern allowedTopics;
    /** Listen mode: the ZeroMQ Peer-Address of the last message read by {@link #receive}, when asked for. */
    private String peerAddress;
    /** Listen mode: when a refused publisher was last logged, so a flood of them logs once a minute. */
    private long refusalLoggedMs = -REFUSAL_LOG_INTERVAL_MS;

    private ZContext context;
    private ZMQ.Poller poller;
    private final List<Slot> slots = new ArrayList<>();
    private boolean pollerStale = true;
    private volatile Thread thread;
    private volatile boolean running;

    /** One socket in the poller and what to do when it is readable. */
    private record Slot(ZMQ.Socket socket, Handler handler) {
    }

    @FunctionalInterface
    private interface Handler {
        void readable(long nowMs);
    }

    /** One engine's replay socket and stream; in connect mode also its SUB and connection monitor. */
    private final class Connection implements EngineStream.ReplayRequester {
        final int engineId;
        final EngineStream stream;
        final ZMQ.Socket sub;
        final ZMQ.Socket monitor;
        /** The replay DEALER; replaced by a fresh one when a request must not share a connection with the last. */
        ZMQ.Socket dealer;
        /** The replay DEALER's connection events: replays wait for it rather than give up while it reconnects. */
        ZMQ.Socket dealerMonitor;
        private final String replayEndpoint;
        /** Connect mode: the configured topic's bytes, or null when any topic is taken (none configured). */
        final byte[] expectedTopic;
        final String expectedTopicText;
        /** The topic of the last live message that did not match (null since one matched), and its text. */
        byte[] lastMismatchedTopic;
        String lastMismatchedText;
        private int dealerGeneration;
        /** When the SUB's (the DEALER's) connection was lost with no retry seen since; -1 when none is pending. */
        long subDroppedMs = -1;
        long dealerDroppedMs = -1;
        private final String endpoint;
        /** Listen mode: when this engine's recent restarts by sequence were noticed. */
        final ArrayDeque<Long> restartTimes = new ArrayDeque<>();
        long restartsNoticed;

        Connection(EngineRegistry.Entry entry, boolean subscribe, long nowMs) {
            EngineSpec spec = entry.spec();
            this.engineId = entry.id();
            this.expectedTopicText = spec.topic();
            this.expectedTopic = spec.topic().isEmpty() ? null : spec.topic().getBytes(StandardCharsets.UTF_8);
            this.endpoint = spec.endpoint().toString();
            if (subscribe) {
                String monitorAddress = "inproc://kvbroker-monitor-" + engineId + "-" + System.identityHashCode(this);
                sub = context.createSocket(SocketType.SUB);
                sub.setLinger(0);
                sub.setRcvHWM(receiveHighWaterMark);
                sub.setMaxMsgSize(maxMessageBytes);
                sub.setReconnectIVL(reconnectIntervalMs);
                sub.setReconnectIVLMax(reconnectIntervalMaxMs);
                sub.setHandshakeIvl(HANDSHAKE_TIMEOUT_MS);
                sub.subscribe(EMPTY);
                // The monitor is attached before connecting so the first connection event is not missed.
                sub.monitor(monitorAddress, ZMQ.EVENT_CONNECTED | ZMQ.EVENT_HANDSHAKE_PROTOCOL
                        | ZMQ.EVENT_DISCONNECTED | ZMQ.EVENT_CONNECT_RETRIED);
                monitor = context.createSocket(SocketType.PAIR);
                monitor.connect(monitorAddress);
            } else {
                sub = null;
                monitor = null;
            }
            replayEndpoint = spec.replayEndpoint().map(Object::toString).orElse(null);
            stream = new EngineStream(engineId, spec.key().toString(), sink, decoder, this, limits, nowMs);
            EngineStream.Resume resume = resumes.remove(engineId);
            if (resume != null) {
                stream.resume(resume);
            }
            if (replayEndpoint != null) {
                openDealer();
            }
            if (sub != null) {
                sub.connect(spec.endpoint().toString());
            }
        }

        void addSlots() {
            if (sub != null) {
                slots.add(new Slot(sub, now -> drainLive(this, now)));
                slots.add(new Slot(monitor, now -> drainMonitor(this, now)));
            }
            if (dealer != null) {
                slots.add(new Slot(dealer, now -> drainReplay(this, now)));
                slots.add(new Slot(dealerMonitor, now -> drainReplayMonitor(this, now)));
            }
        }

        /** A new DEALER to the replay endpoint, monitored from before it connects. */
        private void openDealer() {
            dealer = context.createSocket(SocketType.DEALER);
            dealer.setLinger(0);
            dealer.setRcvHWM(REPLAY_RECEIVE_HIGH_WATER_MARK);
            dealer.setMaxMsgSize(maxMessageBytes);
            dealer.setReconnectIVL(reconnectIntervalMs);
            dealer.setReconnectIVLMax(reconnectIntervalMaxMs);
            dealer.setHandshakeIvl(HANDSHAKE_TIMEOUT_MS);
            String monitorAddress = "inproc://kvbroker-replay-monitor-" + engineId + "-"
                    + System.identityHashCode(this) + "-" + dealerGeneration++;
            dealer.monitor(monitorAddress, ZMQ.EVENT_CONNECTED | ZMQ.EVENT_DISCONNECTED | ZMQ.EVENT_CONNECT_RETRIED);
            dealerMonitor = context.createSocket(SocketType.PAIR);
            dealerMonitor.connect(monitorAddress);
            // Until its monitor reports a connection, silence from the replay socket is not a lost history.
            stream.onReplayDisconnected(clock.getAsLong());
            dealer.connect(replayEndpoint);
            pollerStale = true;
        }

        /**
         * Connects again a socket whose connection ZeroMQ ended for a protocol error (no retry followed its loss
         * within {@link #PROTOCOL_DROP_GRACE_MS}): counted, as the engine sent something it may not, most often a
         * frame over {@code ingest.maxMessageBytes}.
         */
        void reviveDropped(long nowMs) {
            if (subDroppedMs >= 0 && nowMs - subDroppedMs >= PROTOCOL_DROP_GRACE_MS) {
                subDroppedMs = -1;
                protocolDrop("live");
                sub.disconnect(endpoint);
                sub.connect(endpoint);
            }
            if (dealerDroppedMs >= 0 && nowMs - dealerDroppedMs >= PROTOCOL_DROP_GRACE_MS) {
                dealerDroppedMs = -1;
                protocolDrop("replay");
                dealer.close();
                dealerMonitor.close();
                openDealer();
            }
        }

        private void protocolDrop(String socket) {
            stream.counters().increment(Counter.PROTOCOL_DROPS);
            logRefusal(clock.getAsLong(), "engine {}: ZeroMQ closed the {} connection for a protocol error (most"
                    + " often a frame over ingest.maxMessageBytes = {}); connecting again", engineId, socket,
                    maxMessageBytes);
        }

        @Override
        public boolean canReplay() {
            return replayEndpoint != null;
        }

        @Override
        public void requestReplay(long fromSequence, boolean fresh) {
            if (fresh) {
                // The ROUTER answers on the connection that asked: replies to the abandoned request die with it.
                dealerDroppedMs = -1;
                dealer.close();
                dealerMonitor.close();
                openDealer();
            }
            // Non-blocking: if the request cannot be queued, the replay times out and is asked again.
            if (dealer.send(EMPTY, ZMQ.SNDMORE | ZMQ.DONTWAIT)) {
                dealer.send(WireFrames.sequenceFrame(fromSequence), ZMQ.DONTWAIT);
            }
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
    }

    /** Listen mode: the SUB bound for one rank, shared by every engine of that rank. */
    private final class ListenSocket {
        final int rank;
        final ZMQ.Socket sub;
        /** The bound SUB's connection events: a publisher whose connection ZeroMQ dropped is counted. */
        final ZMQ.Socket monitor;
        final Map<String, Connection> byTopic = new HashMap<>();
        final Set<String> refused = new HashSet<>();
        byte[] lastTopic = EMPTY;
        String lastTopicText = "";
        /** The last peer seen and whether it may send: consecutive messages mostly come from one connection. */
        String lastPeer;
        boolean lastPeerAllowed;

        ListenSocket(int rank) {
            this.rank = rank;
            sub = context.createSocket(SocketType.SUB);
            sub.setLinger(0);
            sub.setRcvHWM(receiveHighWaterMark);
            sub.setMaxMsgSize(maxMessageBytes);
            sub.setHandshakeIvl(HANDSHAKE_TIMEOUT_MS);
            sub.subscribe(EMPTY);
            String monitorAddress = "inproc://kvbroker-listen-monitor-" + rank + "-" + System.identityHashCode(this);
            sub.monitor(monitorAddress, ZMQ.EVENT_DISCONNECTED);
            monitor = context.createSocket(SocketType.PAIR);
            monitor.connect(monitorAddress);
            sub.bind("tcp://" + listen.host() + ":" + (listen.port() + rank));
        }
    }

    public ZmqIngest(EngineRegistry registry, IngestSink sink, IngestSettings settings) {
        this(registry, sink, settings, System::currentTimeMillis);
    }

    ZmqIngest(EngineRegistry registry, IngestSink sink, EngineStream.Limits limits, ListenSettings listen,
            int receiveHighWaterMark, int reconnectIntervalMs, LongSupplier clock) {
        this(registry, sink, IngestSettings.of(limits, listen, receiveHighWaterMark, reconnectIntervalMs), clock);
    }

    ZmqIngest(EngineRegistry registry, IngestSink sink, EngineStream.Limits limits, ListenSettings listen,
            int receiveHighWaterMark, int reconnectIntervalMs, int reconnectIntervalMaxMs, long maxMessageBytes,
            LongSupplier clock) {
        this(registry, sink, new IngestSettings(limits, listen, receiveHighWaterMark, maxMessageBytes,
                reconnectIntervalMs, reconnectIntervalMaxMs), clock);
    }

    ZmqIngest(EngineRegistry registry, IngestSink sink, IngestSettings settings, LongSupplier clock) {
        this.registry = registry;
        this.sink = sink;
        this.limits = settings.limits();
        this.listen = settings.listen();
        this.receiveHighWaterMark = settings.receiveHighWaterMark();
        this.reconnectIntervalMs = settings.reconnectIntervalMs();
        this.reconnectIntervalMaxMs = settings.reconnectIntervalMaxMs();
        this.maxMessageBytes = settings.maxMessageBytes();
        this.clock = clock;
        this.allowedTopics = listen.topicPattern();
    }

    @Override
    public String name() {
        return "ingest";
    }

    @Override
    public void start() {
        context = new ZContext(1);
        context.setLinger(0);
        // Six sockets an engine in connect mode (SUB, DEALER, their monitors and the PAIRs reading them): JeroMQ's
        // default of 1024 sockets stops ingest near 170 engines. Set before the first socket sizes the table.
        context.getContext().setMaxSockets(MAX_SOCKETS);
        try {
            for (int rank = 0; listen.enabled() && rank < listen.maxRanks(); rank++) {
                listenSockets.add(new ListenSocket(rank));
            }
        } catch (RuntimeException e) {
            context.close();
            throw new IllegalStateException("cannot listen on " + listen.host() + ":" + listen.port() + ".."
                    + (listen.port() + listen.maxRanks() - 1) + ": " + e.getMessage(), e);
        }
        if (listen.enabled()) {
            LOG.info("listening for engines on tcp://{}:{}..{}", listen.host(), listen.port(),
                    listen.port() + listen.maxRanks() - 1);
        }
        for (EngineRegistry.Entry entry : registry.live()) {
            add(entry.id());
        }
        running = true;
        thread = new Thread(this::run, "kvbroker-ingest");
        thread.start();
    }

    /** Makes an engine continue from a persisted position when its stream is created (call before {@link #start}). */
    public void resume(int engineId, EngineStream.Resume resume) {
        resumes.put(engineId, resume);
    }

    /** Starts subscribing to a registered engine's PUB socket; takes effect on the ingest thread. */
    public void add(int engineId) {
        commands.add(() -> {
            if (connections.stream().noneMatch(c -> c.engineId == engineId)) {
                Connection connection = new Connection(registry.entry(engineId), true, clock.getAsLong());
                connections.add(connection);
                streams.put(engineId, connection.stream);
                pollerStale = true;
            }
        });
    }

    /** Stops ingesting an engine and clears its state; takes effect on the ingest thread. */
    public void remove(int engineId) {
        commands.add(() -> {
            for (Connection connection : List.copyOf(connections)) {
                if (connection.engineId == engineId) {
                    drop(connection);
                }
            }
        });
    }

    /**
     * Starts a new incarnation of an engine whose process was replaced (discovery saw a new container); takes effect
     * on the ingest thread.
     */
    public void restart(int engineId) {
        commands.add(() -> {
            EngineStream stream = streams.get(engineId);
            if (stream != null && stream.state() != EngineState.REMOVED) {
                stream.onRestartSignalled(clock.getAsLong());
            }
        });
    }

    /** Whether the ingest thread runs (for the readiness probe). */
    public boolean isRunning() {
        Thread loop = thread;
        return running && loop != null && loop.isAlive();
    }

    /** The engines' streams, for status and metrics; read-only outside the ingest thread. */
    public Collection<EngineStream> streams() {
        return streams.values();
    }

    public EngineStream stream(int engineId) {
        return streams.get(engineId);
    }

    /** Listen mode: messages refused because their topic was empty (engines could not be told apart). */
    public long refusedEmptyTopic() {
        return refusedEmptyTopic.get();
    }

    /** Listen mode: (topic, rank) pairs refused because two engines interleaved their sequences under them. */
    public long refusedSharedTopic() {
        return refusedSharedTopic.get();
    }

    /** Listen mode: messages refused because no configured engine, discovered engine or allowed topic has it. */
    public long refusedUnknownTopic() {
        return refusedUnknownTopic.get();
    }

    /** Listen mode: messages refused because they came from outside {@code ingest.listen.allowedAddresses}. */
    public long refusedUnknownAddress() {
        return refusedUnknownAddress.get();
    }

    /** Listen mode: messages dropped because their (topic, rank) was refused as shared. */
    public long refusedSharedTopicMessages() {
        return refusedSharedTopicMessages.get();
    }

    /**
     * Listen mode: messages whose frames could not be parsed and whose first frame is no admitted engine's topic
     * (one that is, is counted as that engine's decode error).
     */
    public long refusedMalformed() {
        return refusedMalformed.get();
    }

    /**
     * Listen mode: publisher connections ZeroMQ dropped or lost. A frame over {@code ingest.maxMessageBytes} ends
     * its connection this way (JeroMQ 0.6.0 reports no other event for it), as does a publisher going away.
     */
    public long publisherDisconnects() {
        return publisherDisconnects.get();
    }

    private void run() {
        long lastTick = clock.getAsLong();
        try {
            while (running) {
                Runnable command;
                while ((command = commands.poll()) != null) {
                    command.run();
                }
                if (pollerStale) {
                    rebuildPoller();
                }
                poller.poll(TICK_MS);
                long now = clock.getAsLong();
                // A handler that admits or drops an engine marks the poller stale: the slots after it may be closed.
                for (int i = 0; i < slots.size() && !pollerStale; i++) {
                    if (poller.pollin(i)) {
                        slots.get(i).handler().readable(now);
                    }
                }
                sink.onRoundEnd(now);
                if (now - lastTick >= TICK_MS) {
                    lastTick = now;
                    for (Connection connection : connections) {
                        connection.stream.onTick(now);
                        connection.reviveDropped(now);
                    }
                }
            }
        } catch (RuntimeException e) {
            if (running) {
                LOG.error("ingest loop failed", e);
            }
        } finally {
            for (Connection connection : connections) {
                connection.close();
            }
            connections.clear();
            for (ListenSocket socket : listenSockets) {
                socket.sub.close();
                socket.monitor.close();
            }
            if (poller != null) {
                poller.close();
            }
        }
    }

    private void rebuildPoller() {
        if (poller != null) {
            poller.close();
        }
        slots.clear();
        for (ListenSocket socket : listenSockets) {
            slots.add(new Slot(socket.sub, now -> drainListen(socket, now)));
            slots.add(new Slot(socket.monitor, now -> drainListenMonitor(socket)));
        }
        for (Connection connection : connections) {
            connection.addSlots();
        }
        poller = context.createPoller(Math.max(1, slots.size()));
        for (Slot slot : slots) {
            // Registered in slot order, so poller item i is slot i.
            poller.register(slot.socket(), ZMQ.Poller.POLLIN);
        }
        pollerStale = false;
    }

    /** Reads one multipart message into {@link #frames}; returns its frame count, or 0 if none was waiting. */
    private int receive(ZMQ.Socket socket) {
        return receive(socket, false);
    }

    /** As {@link #receive(ZMQ.Socket)}; with {@code withPeer}, also sets {@link #peerAddress} from the metadata. */
    private int receive(ZMQ.Socket socket, boolean withPeer) {
        byte[] first;
        if (withPeer) {
            zmq.Msg msg = socket.recvMsg(ZMQ.DONTWAIT);
            first = msg == null ? null : msg.data();
            zmq.io.Metadata metadata = msg == null ? null : msg.getMetadata();
            peerAddress = metadata == null ? null : metadata.get(zmq.io.Metadata.PEER_ADDRESS);
        } else {
            first = socket.recv(ZMQ.DONTWAIT);
        }
        if (first == null) {
            return 0;
        }
        frames[0] = first;
        int count = 1;
        while (socket.hasReceiveMore()) {
            byte[] frame = socket.recv(0);
            if (count < MAX_FRAMES) {
                frames[count] = frame;
            }
            count++;
        }
        return count;
    }

    private void drainLive(Connection connection, long now) {
        for (int n = 0; n < BURST; n++) {
            int count = receive(connection.sub);
            if (count == 0) {
                return;
            }
            try {
                LiveMessage message = WireFrames.live(frames, count);
                if (!topicMatches(connection, message.topic())) {
                    continue;
                }
                connection.stream.onLive(message.sequence(), message.payload(), now);
            } catch (MalformedMessageException e) {
                connection.stream.onMalformedFrames(e);
            }
        }
    }

    /**
     * Whether a live message's topic is the engine's configured one (any topic when none is configured). The SUB
     * subscribes to everything rather than to the topic, so that a wrong topic is counted and shown, not just silent.
     */
    private static boolean topicMatches(Connection connection, byte[] topic) {
        if (connection.expectedTopic == null || Arrays.equals(topic, connection.expectedTopic)) {
            if (connection.lastMismatchedTopic != null) {
                connection.lastMismatchedTopic = null;
                connection.stream.onTopicMatched();
            }
            return true;
        }
        if (!Arrays.equals(topic, connection.lastMismatchedTopic)) {
            // A flood of one wrong topic is decoded once.
            connection.lastMismatchedTopic = topic;
            connection.lastMismatchedText = new String(topic, StandardCharsets.UTF_8);
        }
        connection.stream.onTopicMismatch(connection.lastMismatchedText, connection.expectedTopicText);
        return false;
    }

    private void drainReplay(Connection connection, long now) {
        for (int n = 0; n < BURST; n++) {
            int count = receive(connection.dealer);
            if (count == 0) {
                return;
            }
            try {
                ReplayMessage message = WireFrames.replay(frames, count);
                connection.stream.onReplay(message, now);
            } catch (MalformedMessageException e) {
                connection.stream.onMalformedFrames(e);
            }
        }
    }

    private void drainMonitor(Connection connection, long now) {
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(connection.monitor, ZMQ.DONTWAIT)) != null) {
            if (event.getEvent() == ZMQ.EVENT_CONNECTED) {
                LOG.debug("engine {} connected at {}", connection.engineId, event.getAddress());
                connection.subDroppedMs = -1;
                connection.stream.onConnected(now);
            } else if (event.getEvent() == ZMQ.EVENT_HANDSHAKE_PROTOCOL) {
                connection.stream.onGreeted();
            } else if (event.getEvent() == ZMQ.EVENT_CONNECT_RETRIED) {
                connection.subDroppedMs = -1;
            } else if (event.getEvent() == ZMQ.EVENT_DISCONNECTED) {
                LOG.debug("engine {} disconnected", connection.engineId);
                connection.subDroppedMs = now;
                connection.stream.counters().increment(Counter.DISCONNECTIONS);
                connection.stream.onDisconnected(now);
            }
        }
    }

    private void drainReplayMonitor(Connection connection, long now) {
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(connection.dealerMonitor, ZMQ.DONTWAIT)) != null) {
            if (event.getEvent() == ZMQ.EVENT_CONNECTED) {
                connection.dealerDroppedMs = -1;
                connection.stream.onReplayConnected(now);
            } else if (event.getEvent() == ZMQ.EVENT_CONNECT_RETRIED) {
                connection.dealerDroppedMs = -1;
            } else if (event.getEvent() == ZMQ.EVENT_DISCONNECTED) {
                connection.dealerDroppedMs = now;
                connection.stream.counters().increment(Counter.DISCONNECTIONS);
                connection.stream.onReplayDisconnected(now);
            }
        }
    }

    private void drainListenMonitor(ListenSocket socket) {
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(socket.monitor, ZMQ.DONTWAIT)) != null) {
            if (event.getEvent() == ZMQ.EVENT_DISCONNECTED) {
                publisherDisconnects.incrementAndGet();
            }
        }
    }

    private void drainListen(ListenSocket socket, long now) {
        boolean checkPeer = !listen.allowedAddresses().isEmpty();
        for (int n = 0; n < BURST && !pollerStale; n++) {
            int count = receive(socket.sub, checkPeer);
            if (count == 0) {
                return;
            }
            if (checkPeer && !peerAllowed(socket)) {
                refusedUnknownAddress.incrementAndGet();
                logRefusal(now, "a publisher at {} is not in ingest.listen.allowedAddresses; its messages are"
                        + " dropped (rank {})", peerAddress, socket.rank);
                continue;
            }
            LiveMessage message;
            try {
                message = WireFrames.live(frames, count);
            } catch (MalformedMessageException e) {
                // The first frame is a topic whatever else is wrong: an admitted engine's counts it by reason, else
                // the sender is unknown and it is counted against the listening socket.
                Connection known = socket.byTopic.get(new String(frames[0], StandardCharsets.UTF_8));
                if (known != null) {
                    known.stream.onMalformedFrames(e);
                } else {
                    refusedMalformed.incrementAndGet();
                }
                continue;
            }
            if (message.topic().length == 0) {
                refusedEmptyTopic.incrementAndGet();
                continue;
            }
            // Consecutive messages mostly come from the same engine: avoid decoding the topic again.
            if (!Arrays.equals(message.topic(), socket.lastTopic)) {
                socket.lastTopic = message.topic();
                socket.lastTopicText = new String(message.topic(), StandardCharsets.UTF_8);
            }
            String topic = socket.lastTopicText;
            if (socket.refused.contains(topic)) {
                refusedSharedTopicMessages.incrementAndGet();
                continue;
            }
            Connection connection = socket.byTopic.get(topic);
            if (connection == null) {
                if (!topicAllowed(topic, socket.rank)) {
                    refusedUnknownTopic.incrementAndGet();
                    logRefusal(now, "topic '{}' at rank {} is not a configured engine's nor in"
                            + " ingest.listen.allowedTopics; its messages are dropped", topic, socket.rank);
                    continue;
                }
                connection = admit(socket, topic, now);
            }
            connection.stream.onLive(message.sequence(), message.payload(), now);
            if (sharedTopic(connection, now)) {
                LOG.warn("engines share topic '{}' at rank {}: their sequences interleave, so they cannot be told"
                        + " apart; refused. Give each engine its own topic.", topic, socket.rank);
                refusedSharedTopic.incrementAndGet();
                socket.refused.add(topic);
                socket.byTopic.remove(topic);
                drop(connection);
            }
        }
    }

    /** Whether the last message's sender may send, by its address; the answer is kept for the same peer. */
    private boolean peerAllowed(ListenSocket socket) {
        if (peerAddress == null || !peerAddress.equals(socket.lastPeer)) {
            socket.lastPeer = peerAddress;
            socket.lastPeerAllowed = listen.addressAllowed(AddressBlock.peerHost(peerAddress));
        }
        return socket.lastPeerAllowed;
    }

    /** Whether a new topic may be admitted: a registered engine's (configured or discovered), or allowed. */
    private boolean topicAllowed(String topic, int rank) {
        return allowedTopics == null || registry.findByTopic(topic, rank).isPresent()
                || allowedTopics.matcher(topic).matches();
    }

    /** Logs a refused publisher at most once a minute (the counters have them all). */
    private void logRefusal(long now, String format, Object... arguments) {
        if (now - refusalLoggedMs >= REFUSAL_LOG_INTERVAL_MS) {
            refusalLoggedMs = now;
            LOG.warn(format, arguments);
        }
    }

    /** A listening engine seen for the first time: registered (unless configured) with its replay address. */
    private Connection admit(ListenSocket socket, String topic, long now) {
        Optional<EngineRegistry.Entry> known = registry.findByTopic(topic, socket.rank);
        EngineRegistry.Entry entry = known.orElseGet(() -> registry.entry(register(topic, socket.rank)));
        Connection connection = new Connection(entry, false, now);
        connections.add(connection);
        streams.put(entry.id(), connection.stream);
        socket.byTopic.put(topic, connection);
        pollerStale = true;
        LOG.info("engine {} (topic '{}', rank {}) connected to the listening port; replay {}", entry.spec().key(),
                topic, socket.rank, entry.spec().replayEndpoint().map(Object::toString).orElse("none"));
        return connection;
    }

    /** Registers a listening engine from its topic: llm-d's {@code kv@HOST@MODEL} names its pod and model. */
    private int register(String topic, int rank) {
        String[] parts = topic.split("@", 3);
        boolean llmd = parts.length == 3 && parts[0].equals("kv") && !parts[1].isEmpty();
        String pod = llmd ? parts[1] : topic;
        String model = llmd ? parts[2] : "";
        Optional<Endpoint> replay = Optional.empty();
        if (llmd && listen.replayPort() > 0) {
            replay = Optional.of(new Endpoint("tcp", parts[1], listen.replayPort() + rank));
        }
        Endpoint endpoint = new Endpoint("tcp", listen.host(), listen.port() + rank);
        try {
            return registry.register(new EngineSpec(new EngineKey(pod, rank), model, endpoint, replay, topic));
        } catch (IllegalArgumentException e) {
            // The host serves another topic at this rank already: name the engine by its whole topic.
            return registry.register(new EngineSpec(new EngineKey(topic, rank), model, endpoint, replay, topic));
        }
    }

    /**
     * Whether the engine restarted by sequence {@link #SHARED_TOPIC_RESTARTS} times within the window: two engines
     * interleaving under one topic look exactly like that. Restarts found while draining a replay count too.
     */
    private boolean sharedTopic(Connection connection, long now) {
        long restarts = connection.stream.counters().get(Counter.RESTARTS_BY_SEQUENCE);
        if (restarts == connection.restartsNoticed) {
            return false;
        }
        for (; connection.restartsNoticed < restarts; connection.restartsNoticed++) {
            connection.restartTimes.addLast(now);
        }
        while (!connection.restartTimes.isEmpty()
                && now - connection.restartTimes.peekFirst() > SHARED_TOPIC_WINDOW_MS) {
            connection.restartTimes.removeFirst();
        }
        return connection.restartTimes.size() >= SHARED_TOPIC_RESTARTS;
    }

    private void drop(Connection connection) {
        connection.stream.onRemoved();
        connection.close();
        connections.remove(connection);
        registry.remove(connection.engineId);
        pollerStale = true;
    }

    @Override
    public void stop(Duration budget) throws InterruptedException {
        running = false;
        if (thread != null) {
            thread.join(Math.max(1, budget.toMillis()));
        }
        if (context != null) {
            context.close();
        }
    }
}
