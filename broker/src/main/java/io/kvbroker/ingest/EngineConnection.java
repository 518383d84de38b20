package io.kvbroker.ingest;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.codec.WireFrames.LiveMessage;
import io.kvbroker.codec.WireFrames.ReplayMessage;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.ingest.EngineCounters.Counter;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.zeromq.ZMQ;

/**
 * Feeds one engine's {@link EngineStream} from its {@link EngineSockets}: live messages checked against its topic,
 * replay replies, and both monitors' connection events; and sends the replay requests the stream asks for.
 *
 * <p>Design note: {@link ZmqIngest} calls it on the ingest thread when one of its sockets is readable, and on every
 * tick; each read takes at most {@link #BURST} messages so a flooding engine cannot starve the others.
 */
final class EngineConnection implements EngineStream.ReplayRequester {
    private static final Logger LOG = LoggerFactory.getLogger(EngineConnection.class);
    /** Messages taken from one socket per poll round, so a flooding engine cannot starve the others. */
    static final int BURST = 256;

    /** What a connection needs of the ingest loop that runs it. */
    interface Loop {
        /** A socket was replaced: the poller must be rebuilt before the next poll. */
        void socketsChanged();

        /** Logs what a peer sent and may not, at most once a minute with ingest's other refusals. */
        void logRefusal(long nowMs, String format, Object... arguments);

        long nowMs();
    }

    private final int engineId;
    private final EngineStream stream;
    private final EngineSockets sockets;
    private final FrameReader reader;
    private final Loop loop;
    private final long maxMessageBytes;
    /** Connect mode: the configured topic's bytes, or null when any topic is taken (none configured). */
    private final byte[] expectedTopic;
    private final String expectedTopicText;
    /** The topic of the last live message that did not match (null since one matched), and its text. */
    private byte[] lastMismatchedTopic;
    private String lastMismatchedText;

    /**
     * Creates the engine's stream (continuing from {@code resume} when given) and opens its sockets: the DEALER now,
     * the SUB's connection last, so the stream exists before any event.
     */
    EngineConnection(EngineRegistry.Entry entry, EngineSockets sockets, IngestSettings settings, IngestSink sink,
            KvEventDecoder decoder, EngineStream.Resume resume, FrameReader reader, Loop loop, long nowMs) {
        EngineSpec spec = entry.spec();
        this.engineId = entry.id();
        this.sockets = sockets;
        this.reader = reader;
        this.loop = loop;
        this.maxMessageBytes = settings.maxMessageBytes();
        this.expectedTopicText = spec.topic();
        this.expectedTopic = spec.topic().isEmpty() ? null : spec.topic().getBytes(StandardCharsets.UTF_8);
        this.stream = new EngineStream(engineId, spec.key().toString(), sink, decoder, this, settings.limits(), nowMs);
        if (resume != null) {
            stream.resume(resume);
        }
        if (sockets.canReplay()) {
            openDealer();
        }
        sockets.connectLive();
    }

    int engineId() {
        return engineId;
    }

    EngineStream stream() {
        return stream;
    }

    EngineSockets sockets() {
        return sockets;
    }

    private void openDealer() {
        sockets.openDealer();
        // Until its monitor reports a connection, silence from the replay socket is not a lost history.
        stream.onReplayDisconnected(loop.nowMs());
        loop.socketsChanged();
    }

    @Override
    public boolean canReplay() {
        return sockets.canReplay();
    }

    @Override
    public void requestReplay(long fromSequence, boolean fresh) {
        if (fresh) {
            // The ROUTER answers on the connection that asked: replies to the abandoned request die with it.
            sockets.closeDealer();
            openDealer();
        }
        sockets.sendReplayRequest(fromSequence);
    }

    /** Time passes: the stream's timers, and sockets ZeroMQ gave up on connected again. */
    void tick(long nowMs) {
        stream.onTick(nowMs);
        reviveDropped(nowMs);
    }

    /**
     * Connects again a socket whose connection ZeroMQ ended for a protocol error (no retry followed its loss within
     * {@link EngineSockets#PROTOCOL_DROP_GRACE_MS}): counted, as the engine sent something it may not, most often a
     * frame over {@code ingest.maxMessageBytes}.
     */
    private void reviveDropped(long nowMs) {
        if (sockets.reviveLive(nowMs)) {
            protocolDrop("live");
        }
        if (sockets.replayDroppedForGood(nowMs)) {
            protocolDrop("replay");
            openDealer();
        }
    }

    private void protocolDrop(String socket) {
        stream.counters().increment(Counter.PROTOCOL_DROPS);
        loop.logRefusal(loop.nowMs(), "engine {}: ZeroMQ closed the {} connection for a protocol error (most often a"
                + " frame over ingest.maxMessageBytes = {}); connecting again", engineId, socket, maxMessageBytes);
    }

    /** The engine was removed: its stream cleared (kept for its counters), its sockets closed. */
    void remove() {
        stream.onRemoved();
        sockets.close();
    }

    void drainLive(long nowMs) {
        for (int n = 0; n < BURST; n++) {
            int count = reader.receive(sockets.sub(), false);
            if (count == 0) {
                return;
            }
            try {
                LiveMessage message = WireFrames.live(reader.frames(), count);
                if (!topicMatches(message.topic())) {
                    continue;
                }
                stream.onLive(message.sequence(), message.payload(), nowMs);
            } catch (MalformedMessageException e) {
                stream.onMalformedFrames(e);
            }
        }
    }

    /**
     * Whether a live message's topic is the engine's configured one (any topic when none is configured). The SUB
     * subscribes to everything rather than to the topic, so that a wrong topic is counted and shown, not just silent.
     */
    private boolean topicMatches(byte[] topic) {
        if (expectedTopic == null || Arrays.equals(topic, expectedTopic)) {
            if (lastMismatchedTopic != null) {
                lastMismatchedTopic = null;
                stream.onTopicMatched();
            }
            return true;
        }
        if (!Arrays.equals(topic, lastMismatchedTopic)) {
            // A flood of one wrong topic is decoded once.
            lastMismatchedTopic = topic;
            lastMismatchedText = new String(topic, StandardCharsets.UTF_8);
        }
        stream.onTopicMismatch(lastMismatchedText, expectedTopicText);
        return false;
    }

    void drainReplay(long nowMs) {
        for (int n = 0; n < BURST; n++) {
            int count = reader.receive(sockets.dealer(), false);
            if (count == 0) {
                return;
            }
            try {
                ReplayMessage message = WireFrames.replay(reader.frames(), count);
                stream.onReplay(message, nowMs);
            } catch (MalformedMessageException e) {
                stream.onMalformedFrames(e);
            }
        }
    }

    void drainMonitor(long nowMs) {
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(sockets.monitor(), ZMQ.DONTWAIT)) != null) {
            if (event.getEvent() == ZMQ.EVENT_CONNECTED) {
                LOG.debug("engine {} connected at {}", engineId, event.getAddress());
                sockets.retrying(false);
                stream.onConnected(nowMs);
            } else if (event.getEvent() == ZMQ.EVENT_HANDSHAKE_PROTOCOL) {
                stream.onGreeted();
            } else if (event.getEvent() == ZMQ.EVENT_CONNECT_RETRIED) {
                sockets.retrying(false);
            } else if (event.getEvent() == ZMQ.EVENT_DISCONNECTED) {
                LOG.debug("engine {} disconnected", engineId);
                sockets.lost(false, nowMs);
                stream.counters().increment(Counter.DISCONNECTIONS);
                stream.onDisconnected(nowMs);
            }
        }
    }

    void drainReplayMonitor(long nowMs) {
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(sockets.dealerMonitor(), ZMQ.DONTWAIT)) != null) {
            if (event.getEvent() == ZMQ.EVENT_CONNECTED) {
                sockets.retrying(true);
                stream.onReplayConnected(nowMs);
            } else if (event.getEvent() == ZMQ.EVENT_CONNECT_RETRIED) {
                sockets.retrying(true);
            } else if (event.getEvent() == ZMQ.EVENT_DISCONNECTED) {
                sockets.lost(true, nowMs);
                stream.counters().increment(Counter.DISCONNECTIONS);
                stream.onReplayDisconnected(nowMs);
            }
        }
    }
}
