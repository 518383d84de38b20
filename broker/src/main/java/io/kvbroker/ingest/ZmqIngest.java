package io.kvbroker.ingest;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.lifecycle.Component;
import io.kvbroker.net.ListenFailure;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;
import org.zeromq.ZMQException;
import zmq.ZError;

/**
 * Takes in every engine's PUB stream and replay ROUTER on one thread with one poller, and feeds each engine's
 * messages to its {@link EngineStream}.
 *
 * <p>Design note: connect mode gives each engine a SUB, a replay DEALER and a monitor PAIR for each of them
 * ({@link EngineSockets}, read by the engine's {@link EngineConnection}): the SUB's connection events start
 * first-contact and reconnect replays; the DEALER's keep a replay from giving up while its socket reconnects. Listen
 * mode binds one SUB per data-parallel rank and tells engines apart by (topic, rank) ({@link ListenAdmission}), each
 * with its own replay DEALER. All sockets sit in one slot table on one poller: JeroMQ sockets have no threads of
 * their own, so the process runs the ingest thread plus the context's one I/O thread and reaper whatever the number
 * of engines. Messages are decoded on this thread straight from the received frames (no hand-off, no copy). Engines
 * are added and removed through a queue the loop drains, so only this thread touches sockets. The loop is one step,
 * {@link #doWork}, that the thread repeats (an Aeron agent's duty cycle), so a test can step it instead.
 */
public final class ZmqIngest implements Component {
    private static final Logger LOG = LoggerFactory.getLogger(ZmqIngest.class);
    private static final long TICK_MS = 10;
    /** Room for about 10,000 engines; each socket also holds a few file descriptors (see docs/operations.md). */
    private static final int MAX_SOCKETS = 65_536;

    private final EngineRegistry registry;
    private final IngestSink sink;
    private final IngestSettings settings;
    private final ListenSettings listen;
    private final LongSupplier clock;
    private final ListenAdmission admission;
    private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
    private final Map<Integer, EngineStream> streams = new ConcurrentHashMap<>();
    /** Persisted positions for engines whose streams are not created yet. */
    private final Map<Integer, EngineStream.Resume> resumes = new ConcurrentHashMap<>();
    private final List<EngineConnection> connections = new ArrayList<>();
    private final List<EngineSockets.Listening> listenSockets = new ArrayList<>();
    private final KvEventDecoder decoder = new KvEventDecoder();
    private final FrameReader reader = new FrameReader();
    private final AtomicLong publisherDisconnects = new AtomicLong();
    private final EngineConnection.Loop loop = new EngineConnection.Loop() {
        @Override
        public void socketsChanged() {
            pollerStale = true;
        }

        @Override
        public void logRefusal(long nowMs, String format, Object... arguments) {
            admission.logRefusal(nowMs, format, arguments);
        }

        @Override
        public long nowMs() {
            return clock.getAsLong();
        }
    };

    private ZContext context;
    private ZMQ.Poller poller;
    private final List<Slot> slots = new ArrayList<>();
    private boolean pollerStale = true;
    /** When the streams were last ticked. */
    private long lastTickMs;
    private volatile Thread thread;
    private volatile boolean running;

    /** One socket in the poller and what to do when it is readable. */
    private record Slot(ZMQ.Socket socket, Handler handler) {
    }

    @FunctionalInterface
    private interface Handler {
        void readable(long nowMs);
    }

    /** Opens an engine's sockets and stream: in connect mode with its SUB, in listen mode (admitted) without. */
    private EngineConnection connect(EngineRegistry.Entry entry, boolean subscribe, long nowMs) {
        EngineSpec spec = entry.spec();
        String endpoint = subscribe ? spec.endpoint().toString() : null;
        EngineSockets sockets = new EngineSockets(context, settings, entry.id(), endpoint,
                spec.replayEndpoint().map(Object::toString).orElse(null));
        EngineConnection connection = new EngineConnection(entry, sockets, settings, sink, decoder,
                resumes.remove(entry.id()), reader, loop, nowMs);
        connections.add(connection);
        streams.put(entry.id(), connection.stream());
        pollerStale = true;
        return connection;
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
        this.settings = settings;
        this.listen = settings.listen();
        this.clock = clock;
        this.admission = new ListenAdmission(registry, listen, new ListenAdmission.Engines() {
            @Override
            public EngineStream open(EngineRegistry.Entry entry, long nowMs) {
                return connect(entry, false, nowMs).stream();
            }

            @Override
            public void drop(EngineStream stream) {
                connections.stream().filter(c -> c.stream() == stream).findFirst().ifPresent(ZmqIngest.this::drop);
            }
        });
    }

    @Override
    public String name() {
        return "ingest";
    }

    @Override
    public void start() {
        open();
        running = true;
        thread = new Thread(this::run, "kvbroker-ingest");
        thread.start();
    }

    /**
     * Opens ingest without starting its thread: the context and the listening sockets now, the registered engines'
     * sockets at the first {@link #doWork}. {@link #start} runs it on its own thread; a test may instead step it from
     * its own with {@link #doWork} and {@link #idle}, and close it with {@link #stop}.
     */
    void open() {
        context = new ZContext(1);
        context.setLinger(0);
        // Six sockets an engine in connect mode (SUB, DEALER, their monitors and the PAIRs reading them): JeroMQ's
        // default of 1024 sockets stops ingest near 170 engines. Set before the first socket sizes the table.
        context.getContext().setMaxSockets(MAX_SOCKETS);
        int rank = 0;
        try {
            for (; listen.enabled() && rank < listen.maxRanks(); rank++) {
                listenSockets.add(EngineSockets.listen(context, settings, rank));
            }
        } catch (RuntimeException e) {
            context.close();
            // Closed with the context: stop has nothing of them left to close.
            listenSockets.clear();
            // JeroMQ reports BSD error numbers ("Errno 48"): name the setting and the port instead.
            int code = e instanceof ZMQException zmq ? zmq.getErrorCode() : -1;
            throw new IllegalStateException(ListenFailure.message(IngestSettings.LISTEN_PORT_KEY, listen.host(),
                    listen.port() + rank, code == ZError.EADDRINUSE, code == -1 ? String.valueOf(e.getMessage())
                    : ZError.toString(code)) + (rank == 0 ? "" : " (rank " + rank + ": ingest.listen.port + " + rank
                    + ")"), e);
        }
        if (listen.enabled()) {
            LOG.info("listening for engines on tcp://{}:{}..{}", listen.host(), listen.port(),
                    listen.port() + listen.maxRanks() - 1);
        }
        for (EngineRegistry.Entry entry : registry.live()) {
            add(entry.id());
        }
        lastTickMs = clock.getAsLong();
    }

    /** Makes an engine continue from a persisted position when its stream is created (call before {@link #start}). */
    public void resume(int engineId, EngineStream.Resume resume) {
        resumes.put(engineId, resume);
    }

    /** Starts subscribing to a registered engine's PUB socket; takes effect on the ingest thread. */
    public void add(int engineId) {
        commands.add(() -> {
            if (connections.stream().noneMatch(c -> c.engineId() == engineId)) {
                connect(registry.entry(engineId), true, clock.getAsLong());
            }
        });
    }

    /** Stops ingesting an engine and clears its state; takes effect on the ingest thread. */
    public void remove(int engineId) {
        commands.add(() -> {
            for (EngineConnection connection : List.copyOf(connections)) {
                if (connection.engineId() == engineId) {
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
        return admission.refusedEmptyTopic();
    }

    /** Listen mode: (topic, rank) pairs refused because two engines interleaved their sequences under them. */
    public long refusedSharedTopic() {
        return admission.refusedSharedTopic();
    }

    /** Listen mode: messages refused because no configured engine, discovered engine or allowed topic has it. */
    public long refusedUnknownTopic() {
        return admission.refusedUnknownTopic();
    }

    /** Listen mode: messages refused because they came from outside {@code ingest.listen.allowedAddresses}. */
    public long refusedUnknownAddress() {
        return admission.refusedUnknownAddress();
    }

    /** Listen mode: messages dropped because their (topic, rank) was refused as shared. */
    public long refusedSharedTopicMessages() {
        return admission.refusedSharedTopicMessages();
    }

    /**
     * Listen mode: messages whose frames could not be parsed and whose first frame is no admitted engine's topic
     * (one that is, is counted as that engine's decode error).
     */
    public long refusedMalformed() {
        return admission.refusedMalformed();
    }

    /**
     * Listen mode: publisher connections ZeroMQ dropped or lost. A frame over {@code ingest.maxMessageBytes} ends
     * its connection this way (JeroMQ 0.6.0 reports no other event for it), as does a publisher going away.
     */
    public long publisherDisconnects() {
        return publisherDisconnects.get();
    }

    private void run() {
        try {
            while (running) {
                if (doWork(clock.getAsLong()) == 0) {
                    idle(TICK_MS);
                }
            }
        } catch (RuntimeException e) {
            if (running) {
                LOG.error("ingest loop failed", e);
            }
        } finally {
            closeSockets();
        }
    }

    /**
     * One round of the ingest loop, without blocking: the queued commands, the poller rebuilt if engines came or
     * went, every readable socket served (at most {@link EngineConnection#BURST} messages each), the sink's round
     * end, and every {@link #TICK_MS} the streams' timers. Returns the work done: commands run and sockets served
     * (0: idle).
     */
    int doWork(long nowMs) {
        int work = 0;
        Runnable command;
        while ((command = commands.poll()) != null) {
            command.run();
            work++;
        }
        if (pollerStale) {
            rebuildPoller();
        }
        poller.poll(0);
        // A handler that admits or drops an engine marks the poller stale: the slots after it may be closed.
        for (int i = 0; i < slots.size() && !pollerStale; i++) {
            if (poller.pollin(i)) {
                slots.get(i).handler().readable(nowMs);
                work++;
            }
        }
        sink.onRoundEnd(nowMs);
        if (nowMs - lastTickMs >= TICK_MS) {
            lastTickMs = nowMs;
            for (EngineConnection connection : connections) {
                connection.tick(nowMs);
            }
        }
        return work;
    }

    /**
     * Waits up to {@code timeoutMs} for a socket to become readable, as the loop does after a round with nothing to
     * do; returns at once when the poller is out of date or a command waits (the next {@link #doWork} sees to them).
     */
    void idle(long timeoutMs) {
        if (!pollerStale && commands.isEmpty()) {
            poller.poll(timeoutMs);
        }
    }

    private void closeSockets() {
        for (EngineConnection connection : connections) {
            connection.sockets().close();
        }
        connections.clear();
        for (EngineSockets.Listening socket : listenSockets) {
            socket.close();
        }
        if (poller != null) {
            poller.close();
        }
    }

    private void rebuildPoller() {
        if (poller != null) {
            poller.close();
        }
        slots.clear();
        for (EngineSockets.Listening socket : listenSockets) {
            slots.add(new Slot(socket.sub(), now -> drainListen(socket, now)));
            slots.add(new Slot(socket.monitor(), now -> drainListenMonitor(socket)));
        }
        for (EngineConnection connection : connections) {
            EngineSockets sockets = connection.sockets();
            if (sockets.sub() != null) {
                slots.add(new Slot(sockets.sub(), connection::drainLive));
                slots.add(new Slot(sockets.monitor(), connection::drainMonitor));
            }
            if (sockets.dealer() != null) {
                slots.add(new Slot(sockets.dealer(), connection::drainReplay));
                slots.add(new Slot(sockets.dealerMonitor(), connection::drainReplayMonitor));
            }
        }
        poller = context.createPoller(Math.max(1, slots.size()));
        for (Slot slot : slots) {
            // Registered in slot order, so poller item i is slot i.
            poller.register(slot.socket(), ZMQ.Poller.POLLIN);
        }
        pollerStale = false;
    }

    private void drainListenMonitor(EngineSockets.Listening socket) {
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(socket.monitor(), ZMQ.DONTWAIT)) != null) {
            if (event.getEvent() == ZMQ.EVENT_DISCONNECTED) {
                publisherDisconnects.incrementAndGet();
            }
        }
    }

    private void drainListen(EngineSockets.Listening socket, long now) {
        boolean checkPeer = admission.checksPeers();
        for (int n = 0; n < EngineConnection.BURST && !pollerStale; n++) {
            int count = reader.receive(socket.sub(), checkPeer);
            if (count == 0) {
                return;
            }
            admission.onMessage(socket.rank(), reader.frames(), count, reader.peerAddress(), now);
        }
    }

    /** Removes an engine: its stream is cleared (kept for its counters), its sockets closed, its registration gone. */
    private void drop(EngineConnection connection) {
        connection.remove();
        connections.remove(connection);
        registry.remove(connection.engineId());
        pollerStale = true;
    }

    @Override
    public void stop(Duration budget) throws InterruptedException {
        running = false;
        if (thread != null) {
            thread.join(Math.max(1, budget.toMillis()));
        } else if (context != null) {
            // Opened and stepped without the thread: nothing else will close the sockets.
            closeSockets();
        }
        if (context != null) {
            context.close();
        }
    }
}
