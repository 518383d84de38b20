package io.kvbroker.ingest;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.codec.WireFrames.LiveMessage;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;
import io.kvbroker.daemon.Component;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Subscribes to every engine's PUB socket and replay ROUTER, on one thread with one poller, and feeds each engine's
 * messages to its {@link EngineStream}.
 *
 * <p>Design note: connect mode: one SUB, one replay DEALER and one monitor PAIR socket per engine, all on a single
 * poller. JeroMQ sockets have no threads of their own, so the process runs the ingest thread plus the context's one
 * I/O thread and reaper whatever the number of engines. Messages are decoded on this thread straight from the
 * received frames (no hand-off, no copy). Engines are added and removed through a queue that the loop drains, so
 * sockets are only ever touched by the ingest thread.
 */
public final class ZmqIngest implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(ZmqIngest.class);
    private static final long TICK_MS = 10;
    /** Messages taken from one socket per poll round, so a flooding engine cannot starve the others. */
    private static final int BURST = 256;
    private static final int MAX_FRAMES = 8;
    private static final byte[] EMPTY = new byte[0];

    private final EngineRegistry registry;
    private final IngestSink sink;
    private final EngineStream.Limits limits;
    private final int receiveHighWaterMark;
    private final int reconnectIntervalMs;
    private final LongSupplier clock;
    private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
    private final Map<Integer, EngineStream> streams = new ConcurrentHashMap<>();
    private final List<Connection> connections = new ArrayList<>();
    private final KvEventDecoder decoder = new KvEventDecoder();
    private final byte[][] frames = new byte[MAX_FRAMES][];

    private ZContext context;
    private ZMQ.Poller poller;
    private boolean pollerStale = true;
    private Thread thread;
    private volatile boolean running;

    /** One engine's sockets. */
    private final class Connection implements EngineStream.ReplayRequester {
        final int engineId;
        final EngineStream stream;
        final ZMQ.Socket sub;
        final ZMQ.Socket dealer;
        final ZMQ.Socket monitor;

        Connection(EngineRegistry.Entry entry, long nowMs) {
            EngineSpec spec = entry.spec();
            this.engineId = entry.id();
            String monitorAddress = "inproc://kvbroker-monitor-" + engineId + "-" + System.identityHashCode(this);
            sub = context.createSocket(SocketType.SUB);
            sub.setLinger(0);
            sub.setRcvHWM(receiveHighWaterMark);
            sub.setReconnectIVL(reconnectIntervalMs);
            sub.setReconnectIVLMax(5000);
            sub.subscribe(EMPTY);
            sub.monitor(monitorAddress, ZMQ.EVENT_CONNECTED | ZMQ.EVENT_DISCONNECTED);
            monitor = context.createSocket(SocketType.PAIR);
            monitor.connect(monitorAddress);
            if (spec.replayEndpoint().isPresent()) {
                dealer = context.createSocket(SocketType.DEALER);
                dealer.setLinger(0);
                dealer.setRcvHWM(0);
                dealer.setReconnectIVL(reconnectIntervalMs);
                dealer.setReconnectIVLMax(5000);
                dealer.connect(spec.replayEndpoint().get().toString());
            } else {
                dealer = null;
            }
            stream = new EngineStream(engineId, spec.key().toString(), sink, decoder, this, limits, nowMs);
            sub.connect(spec.endpoint().toString());
        }

        @Override
        public boolean canReplay() {
            return dealer != null;
        }

        @Override
        public void requestReplay(long fromSequence) {
            // Non-blocking: if the request cannot be queued, the replay times out and is asked again.
            if (dealer.send(EMPTY, ZMQ.SNDMORE | ZMQ.DONTWAIT)) {
                dealer.send(WireFrames.sequenceFrame(fromSequence), ZMQ.DONTWAIT);
            }
        }

        void close() {
            sub.close();
            monitor.close();
            if (dealer != null) {
                dealer.close();
            }
        }
    }

    public ZmqIngest(EngineRegistry registry, IngestSink sink, BrokerConfig config) {
        this(registry, sink, limits(config), config.get(Settings.INGEST_RECEIVE_HIGH_WATER_MARK),
                config.get(Settings.INGEST_RECONNECT_INTERVAL_MS), System::currentTimeMillis);
    }

    ZmqIngest(EngineRegistry registry, IngestSink sink, EngineStream.Limits limits, int receiveHighWaterMark,
            int reconnectIntervalMs, LongSupplier clock) {
        this.registry = registry;
        this.sink = sink;
        this.limits = limits;
        this.receiveHighWaterMark = receiveHighWaterMark;
        this.reconnectIntervalMs = reconnectIntervalMs;
        this.clock = clock;
    }

    static EngineStream.Limits limits(BrokerConfig config) {
        return new EngineStream.Limits(config.get(Settings.INGEST_REPLAY_TIMEOUT_MS),
                config.get(Settings.INGEST_REPLAY_MAX_ATTEMPTS), config.get(Settings.INGEST_SILENT_AFTER_MS),
                config.get(Settings.INGEST_MAX_PENDING_BATCHES));
    }

    @Override
    public String name() {
        return "ingest";
    }

    @Override
    public void start() {
        context = new ZContext(1);
        context.setLinger(0);
        for (EngineRegistry.Entry entry : registry.live()) {
            add(entry.id());
        }
        running = true;
        thread = new Thread(this::run, "kvbroker-ingest");
        thread.start();
    }

    /** Starts ingesting a registered engine; takes effect on the ingest thread. */
    public void add(int engineId) {
        commands.add(() -> {
            if (connections.stream().noneMatch(c -> c.engineId == engineId)) {
                Connection connection = new Connection(registry.entry(engineId), clock.getAsLong());
                connections.add(connection);
                streams.put(engineId, connection.stream);
                pollerStale = true;
            }
        });
    }

    /** Stops ingesting an engine and clears its state; takes effect on the ingest thread. */
    public void remove(int engineId) {
        commands.add(() -> {
            for (Connection connection : connections) {
                if (connection.engineId == engineId) {
                    connection.stream.onRemoved();
                    connection.close();
                    connections.remove(connection);
                    pollerStale = true;
                    break;
                }
            }
        });
    }

    /** The engines' streams, for status and metrics; read-only outside the ingest thread. */
    public Collection<EngineStream> streams() {
        return streams.values();
    }

    public EngineStream stream(int engineId) {
        return streams.get(engineId);
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
                for (int i = 0; i < connections.size(); i++) {
                    Connection connection = connections.get(i);
                    int base = 3 * i;
                    if (poller.pollin(base)) {
                        drainLive(connection, now);
                    }
                    if (poller.pollin(base + 1)) {
                        drainMonitor(connection, now);
                    }
                    if (connection.dealer != null && poller.pollin(base + 2)) {
                        drainReplay(connection, now);
                    }
                }
                if (now - lastTick >= TICK_MS) {
                    lastTick = now;
                    for (Connection connection : connections) {
                        connection.stream.onTick(now);
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
            if (poller != null) {
                poller.close();
            }
        }
    }

    private void rebuildPoller() {
        if (poller != null) {
            poller.close();
        }
        poller = context.createPoller(connections.size() * 3);
        for (Connection connection : connections) {
            // Three slots per engine, in a fixed order, so slot i*3+k is engine i's socket k.
            poller.register(connection.sub, ZMQ.Poller.POLLIN);
            poller.register(connection.monitor, ZMQ.Poller.POLLIN);
            if (connection.dealer != null) {
                poller.register(connection.dealer, ZMQ.Poller.POLLIN);
            } else {
                // A placeholder that never reports, to keep the slots aligned.
                poller.register(connection.monitor, 0);
            }
        }
        pollerStale = false;
    }

    /** Reads one multipart message into {@link #frames}; returns its frame count, or 0 if none was waiting. */
    private int receive(ZMQ.Socket socket) {
        byte[] first = socket.recv(ZMQ.DONTWAIT);
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
                connection.stream.onLive(message.sequence(), message.payload(), now);
            } catch (MalformedMessageException e) {
                connection.stream.onMalformedFrames(e);
            }
        }
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
                connection.stream.onConnected(now);
            } else if (event.getEvent() == ZMQ.EVENT_DISCONNECTED) {
                LOG.debug("engine {} disconnected", connection.engineId);
            }
        }
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
