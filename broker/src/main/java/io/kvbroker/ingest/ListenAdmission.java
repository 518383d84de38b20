package io.kvbroker.ingest;

import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.codec.WireFrames.LiveMessage;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.net.AddressBlock;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides, in listen mode, which message read from a listening SUB reaches which engine's stream: the allow-lists by
 * topic and address, engines registered on their first message from their topic, (topic, rank) pairs whose sequences
 * interleave refused as shared, and every refusal counted and logged at most once a minute.
 *
 * <p>Design note: it holds no socket. {@link ZmqIngest} reads each message and hands its frames here, and opens or
 * drops an engine's sockets when asked through {@link Engines}; all of it runs on the ingest thread. The counters are
 * atomics only so that metrics can read them from other threads.
 */
final class ListenAdmission {
    private static final Logger LOG = LoggerFactory.getLogger(ListenAdmission.class);
    /** This many restarts by sequence within the window means two engines share a topic. */
    private static final int SHARED_TOPIC_RESTARTS = 3;
    private static final long SHARED_TOPIC_WINDOW_MS = 10_000;
    private static final long REFUSAL_LOG_INTERVAL_MS = 60_000;

    /** What admission asks of ingest, which owns the sockets. */
    interface Engines {
        /** Opens an admitted engine's replay socket and stream; returns the stream. */
        EngineStream open(EngineRegistry.Entry entry, long nowMs);

        /** Removes an engine refused as shared: its stream (the one {@link #open} returned), sockets, registration. */
        void drop(EngineStream stream);
    }

    /** An admitted engine's stream and when its recent restarts by sequence were noticed. */
    private static final class Admitted {
        final EngineStream stream;
        final ArrayDeque<Long> restartTimes = new ArrayDeque<>();
        long restartsNoticed;

        Admitted(EngineStream stream) {
            this.stream = stream;
        }
    }

    /** One rank's listening SUB: the engines on it by topic and what was last seen on it. */
    private static final class Rank {
        final Map<String, Admitted> byTopic = new HashMap<>();
        final Set<String> refused = new HashSet<>();
        byte[] lastTopic = new byte[0];
        String lastTopicText = "";
        /** The last peer seen and whether it may send: consecutive messages mostly come from one connection. */
        String lastPeer;
        boolean lastPeerAllowed;
    }

    private final EngineRegistry registry;
    private final ListenSettings listen;
    private final Engines engines;
    /** The allowed topics as one pattern; null when any topic may connect. */
    private final Pattern allowedTopics;
    private final Rank[] ranks;
    private final AtomicLong refusedEmptyTopic = new AtomicLong();
    private final AtomicLong refusedSharedTopic = new AtomicLong();
    private final AtomicLong refusedUnknownTopic = new AtomicLong();
    private final AtomicLong refusedUnknownAddress = new AtomicLong();
    private final AtomicLong refusedSharedTopicMessages = new AtomicLong();
    private final AtomicLong refusedMalformed = new AtomicLong();
    /** When a refused publisher was last logged, so a flood of them logs once a minute. */
    private long refusalLoggedMs = -REFUSAL_LOG_INTERVAL_MS;

    ListenAdmission(EngineRegistry registry, ListenSettings listen, Engines engines) {
        this.registry = registry;
        this.listen = listen;
        this.engines = engines;
        this.allowedTopics = listen.topicPattern();
        this.ranks = new Rank[listen.enabled() ? listen.maxRanks() : 0];
        for (int rank = 0; rank < ranks.length; rank++) {
            ranks[rank] = new Rank();
        }
    }

    /** Whether each message's sender address must be read (an address allow-list is set). */
    boolean checksPeers() {
        return !listen.allowedAddresses().isEmpty();
    }

    /**
     * One message read from rank {@code rank}'s listening SUB: refused and counted, or handed to its engine's stream
     * (admitting the engine on its first message).
     *
     * @param peerAddress the message's ZeroMQ {@code Peer-Address} when {@link #checksPeers}, else ignored
     */
    void onMessage(int rank, byte[][] frames, int count, String peerAddress, long nowMs) {
        Rank state = ranks[rank];
        if (checksPeers() && !peerAllowed(state, peerAddress)) {
            refusedUnknownAddress.incrementAndGet();
            logRefusal(nowMs, "a publisher at {} is not in ingest.listen.allowedAddresses; its messages are"
                    + " dropped (rank {})", peerAddress, rank);
            return;
        }
        LiveMessage message;
        try {
            message = WireFrames.live(frames, count);
        } catch (MalformedMessageException e) {
            // The first frame is a topic whatever else is wrong: an admitted engine's counts it by reason, else the
            // sender is unknown and it is counted against the listening socket.
            Admitted known = state.byTopic.get(new String(frames[0], StandardCharsets.UTF_8));
            if (known != null) {
                known.stream.onMalformedFrames(e);
            } else {
                refusedMalformed.incrementAndGet();
            }
            return;
        }
        if (message.topic().length == 0) {
            refusedEmptyTopic.incrementAndGet();
            return;
        }
        // Consecutive messages mostly come from the same engine: avoid decoding the topic again.
        if (!Arrays.equals(message.topic(), state.lastTopic)) {
            state.lastTopic = message.topic();
            state.lastTopicText = new String(message.topic(), StandardCharsets.UTF_8);
        }
        String topic = state.lastTopicText;
        if (state.refused.contains(topic)) {
            refusedSharedTopicMessages.incrementAndGet();
            return;
        }
        Admitted engine = state.byTopic.get(topic);
        if (engine == null) {
            if (!topicAllowed(topic, rank)) {
                refusedUnknownTopic.incrementAndGet();
                logRefusal(nowMs, "topic '{}' at rank {} is not a configured engine's nor in"
                        + " ingest.listen.allowedTopics; its messages are dropped", topic, rank);
                return;
            }
            engine = admit(state, topic, rank, nowMs);
        }
        engine.stream.onLive(message.sequence(), message.payload(), nowMs);
        if (sharedTopic(engine, nowMs)) {
            LOG.warn("engines share topic '{}' at rank {}: their sequences interleave, so they cannot be told"
                    + " apart; refused. Give each engine its own topic.", topic, rank);
            refusedSharedTopic.incrementAndGet();
            state.refused.add(topic);
            state.byTopic.remove(topic);
            engines.drop(engine.stream);
        }
    }

    /** Whether the message's sender may send, by its address; the answer is kept for the same peer. */
    private boolean peerAllowed(Rank state, String peerAddress) {
        if (peerAddress == null || !peerAddress.equals(state.lastPeer)) {
            state.lastPeer = peerAddress;
            state.lastPeerAllowed = listen.addressAllowed(AddressBlock.peerHost(peerAddress));
        }
        return state.lastPeerAllowed;
    }

    /** Whether a new topic may be admitted: a registered engine's (configured or discovered), or allowed. */
    private boolean topicAllowed(String topic, int rank) {
        return allowedTopics == null || registry.findByTopic(topic, rank).isPresent()
                || allowedTopics.matcher(topic).matches();
    }

    /**
     * Logs a refused publisher at most once a minute (the counters have them all). Ingest logs the connections ZeroMQ
     * ended for a protocol error through it too: one limit for all that peers send and may not.
     */
    void logRefusal(long nowMs, String format, Object... arguments) {
        if (nowMs - refusalLoggedMs >= REFUSAL_LOG_INTERVAL_MS) {
            refusalLoggedMs = nowMs;
            LOG.warn(format, arguments);
        }
    }

    /** A listening engine seen for the first time: registered (unless configured) with its replay address. */
    private Admitted admit(Rank state, String topic, int rank, long nowMs) {
        Optional<EngineRegistry.Entry> known = registry.findByTopic(topic, rank);
        EngineRegistry.Entry entry = known.orElseGet(() -> registry.entry(register(topic, rank)));
        Admitted engine = new Admitted(engines.open(entry, nowMs));
        state.byTopic.put(topic, engine);
        LOG.info("engine {} (topic '{}', rank {}) connected to the listening port; replay {}", entry.spec().key(),
                topic, rank, entry.spec().replayEndpoint().map(Object::toString).orElse("none"));
        return engine;
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
    private static boolean sharedTopic(Admitted engine, long nowMs) {
        long restarts = engine.stream.counters().get(Counter.RESTARTS_BY_SEQUENCE);
        if (restarts == engine.restartsNoticed) {
            return false;
        }
        for (; engine.restartsNoticed < restarts; engine.restartsNoticed++) {
            engine.restartTimes.addLast(nowMs);
        }
        while (!engine.restartTimes.isEmpty() && nowMs - engine.restartTimes.peekFirst() > SHARED_TOPIC_WINDOW_MS) {
            engine.restartTimes.removeFirst();
        }
        return engine.restartTimes.size() >= SHARED_TOPIC_RESTARTS;
    }

    long refusedEmptyTopic() {
        return refusedEmptyTopic.get();
    }

    long refusedSharedTopic() {
        return refusedSharedTopic.get();
    }

    long refusedUnknownTopic() {
        return refusedUnknownTopic.get();
    }

    long refusedUnknownAddress() {
        return refusedUnknownAddress.get();
    }

    long refusedSharedTopicMessages() {
        return refusedSharedTopicMessages.get();
    }

    long refusedMalformed() {
        return refusedMalformed.get();
    }
}
