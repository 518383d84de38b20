package io.kvbroker.sim;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.event.KvEventBatch;
import java.nio.charset.StandardCharsets;
import java.util.AbstractList;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.locks.LockSupport;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;
import org.zeromq.ZMQException;

/**
 * One simulated vLLM engine speaking the wire contract exactly: a bound PUB sending {@code [topic, seq, payload]},
 * and a bound ROUTER answering replay requests from a bounded buffer of recent batches, dropping silently at its
 * send high-water mark as vLLM's does. Faults are injected by the test or operator: dropped live batches, a replay
 * cut short or delayed, restarts with or without a disconnect.
 *
 * <p>Design note: not thread-safe; {@link Simulator} drives every engine from its one thread. Timestamps are unique
 * per batch (a base, plus 10,000 s per restart, plus a millisecond per sequence), so a test can tell exactly which
 * published batch a consumer applied. Being a function of incarnation and sequence, they are computed when asked,
 * never kept: the daemon's {@code --simulate} runs these engines for as long as it lives, and a list of every
 * timestamp grew its heap by about 1 MB a minute.
 */
public final class SimulatedEngine {

    /** Identity and wire options of one engine. */
    public record Options(String pod, int rank, String model, String topic, KvEventEncoder.Form form,
            int bufferSteps, int routerHighWaterMark, Workload.Shape shape, long seed) {
        /** The same engine keeping {@code steps} batches for replay. */
        public Options withBufferSteps(int steps) {
            return new Options(pod, rank, model, topic, form, steps, routerHighWaterMark, shape, seed);
        }
    }

    private static final double TIME_BASE = 1.7575e9;
    private static final byte[] EMPTY = new byte[0];
    private static final long BIND_RETRY_NANOS = 2_000_000_000L;

    /** A replay answer read from the buffer when it was asked for, waiting to be sent: its frames, in order. */
    private record DelayedReplay(long askedAtMs, byte[] identity, List<byte[][]> replies) {
    }

    private final ZContext context;
    private final Options options;
    private final Workload workload;
    private final KvEventEncoder encoder = new KvEventEncoder();
    private final byte[] topic;
    private final ArrayDeque<byte[]> buffer = new ArrayDeque<>();
    /** Listen mode: the broker address the PUB connects to (vLLM connects when its endpoint has no '*'). */
    private final String pubConnect;
    private final String host;
    private ZMQ.Socket pub;
    private ZMQ.Socket router;
    private int pubPort;
    private int replayPort;
    private long nextSequence;
    private long firstBuffered;
    private int restarts;
    private int dropLive;
    private int cutReplayAfter = -1;
    private boolean offline;
    private long replayDelayMs;
    /** Subscriptions received since the PUB was last bound: how a test knows a subscriber is there to hear. */
    private int subscriptions;
    private final ArrayDeque<DelayedReplay> delayedReplays = new ArrayDeque<>();

    /**
     * Binds the engine's sockets on loopback.
     *
     * @param pubPort the PUB port, or 0 for any free port
     * @param replayPort the ROUTER port, or 0 for any free port
     */
    public SimulatedEngine(ZContext context, Options options, int pubPort, int replayPort) {
        this(context, options, null, "127.0.0.1", pubPort, replayPort);
    }

    /**
     * An engine whose PUB connects to {@code pubConnect} (a broker in listen mode) instead of binding, and whose
     * ROUTER binds on {@code host}; a null {@code pubConnect} binds the PUB on {@code host} at {@code pubPort}.
     */
    public SimulatedEngine(ZContext context, Options options, String pubConnect, String host, int pubPort,
            int replayPort) {
        this.context = context;
        this.pubConnect = pubConnect;
        this.host = host;
        this.options = options;
        this.workload = new Workload(new SplittableRandom(options.seed()), options.model().hashCode(),
                options.shape());
        this.topic = options.topic().getBytes(StandardCharsets.UTF_8);
        this.pubPort = pubPort;
        this.replayPort = replayPort;
        bind();
    }

    private void bind() {
        // The PUB is an XPUB: the same on the wire as vLLM's PUB, and it tells the simulator when a subscriber's
        // subscription arrived (tests of engines without a replay endpoint publish only once it has).
        pub = context.createSocket(SocketType.XPUB);
        pub.setXpubVerbose(true);
        subscriptions = 0;
        pub.setLinger(0);
        pub.setSndHWM(100_000);
        router = context.createSocket(SocketType.ROUTER);
        router.setLinger(0);
        router.setSndHWM(options.routerHighWaterMark());
        if (pubConnect != null) {
            pub.setReconnectIVL(50);
            pub.connect(pubConnect);
        } else if (pubPort == 0) {
            pubPort = pub.bindToRandomPort("tcp://" + host);
        } else {
            bindAgain(pub, pubPort);
        }
        if (replayPort == 0) {
            replayPort = router.bindToRandomPort("tcp://" + host);
        } else {
            bindAgain(router, replayPort);
        }
    }

    /**
     * Binds a port this engine may have just closed: ZeroMQ lets go of a closed socket's port on its I/O thread, a
     * moment later, so a process coming back at once is refused for a few milliseconds (as a real restart rarely is).
     */
    private void bindAgain(ZMQ.Socket socket, int port) {
        long deadline = System.nanoTime() + BIND_RETRY_NANOS;
        while (true) {
            try {
                socket.bind("tcp://" + host + ":" + port);
                return;
            } catch (ZMQException e) {
                if (e.getErrorCode() != ZMQ.Error.EADDRINUSE.getCode() || System.nanoTime() > deadline) {
                    throw e;
                }
                LockSupport.parkNanos(1_000_000);
            }
        }
    }

    public Options options() {
        return options;
    }

    public String endpoint() {
        return pubConnect != null ? pubConnect : "tcp://" + host + ":" + pubPort;
    }

    public String replayEndpoint() {
        return "tcp://" + host + ":" + replayPort;
    }

    /** The next sequence to be published. */
    public long nextSequence() {
        return nextSequence;
    }

    /**
     * Timestamps of every batch of the current incarnation, by sequence: a read-only view computed from the
     * incarnation and the sequence, as {@link #step()} stamps them (no list of them is kept).
     */
    public List<Double> publishedTimestamps() {
        int incarnation = restarts;
        int size = Math.toIntExact(nextSequence);
        return new AbstractList<>() {
            @Override
            public Double get(int sequence) {
                Objects.checkIndex(sequence, size);
                return timestamp(incarnation, sequence);
            }

            @Override
            public int size() {
                return size;
            }
        };
    }

    private static double timestamp(int incarnation, long sequence) {
        return TIME_BASE + incarnation * 10_000.0 + sequence * 0.001;
    }

    /** One of the system prompts this engine's conversations start with (shared by engines of its model). */
    public int[] systemPrompt(int index) {
        return workload.systemPrompt(index);
    }

    public int restarts() {
        return restarts;
    }

    /**
     * Subscriptions that reached the PUB since it was last bound or connected. A subscriber connected but not yet
     * subscribed would miss what is published: PUB/SUB's slow joiner.
     */
    public int subscriptions() {
        return subscriptions;
    }

    /** The batches the engine keeps for replay, by sequence from {@link #firstBuffered}: what its cache came from. */
    public List<byte[]> bufferedPayloads() {
        return List.copyOf(buffer);
    }

    /** The sequence of the first batch {@link #bufferedPayloads} returns. */
    public long firstBuffered() {
        return firstBuffered;
    }

    /** Publishes one scheduler step's batch (buffered for replay; not sent live while a drop or outage is on). */
    public void step() {
        long sequence = nextSequence++;
        byte[] payload = encoder.encode(new KvEventBatch(timestamp(restarts, sequence), options.rank(),
                workload.step(), 0, 0), options.form());
        buffer.addLast(payload);
        if (buffer.size() > options.bufferSteps()) {
            buffer.removeFirst();
            firstBuffered++;
        }
        if (offline) {
            return;
        }
        if (dropLive > 0) {
            dropLive--;
            return;
        }
        pub.send(topic, ZMQ.SNDMORE);
        pub.send(WireFrames.sequenceFrame(sequence), ZMQ.SNDMORE);
        pub.send(payload, 0);
    }

    /**
     * Answers waiting replay requests: every buffered batch from the asked sequence on, then the end marker; sent now,
     * or once the delay set by {@link #delayReplays} has passed.
     */
    public void serveReplay() {
        if (offline) {
            return;
        }
        byte[] subscription;
        while ((subscription = pub.recv(ZMQ.DONTWAIT)) != null) {
            if (subscription.length > 0 && subscription[0] == 1) {
                subscriptions++;
            }
        }
        byte[] identity;
        while ((identity = router.recv(ZMQ.DONTWAIT)) != null) {
            List<byte[]> rest = new ArrayList<>();
            while (router.hasReceiveMore()) {
                rest.add(router.recv(0));
            }
            if (rest.size() != 2 || rest.get(1).length != 8) {
                continue;
            }
            long from = 0;
            for (byte b : rest.get(1)) {
                from = (from << 8) | (b & 0xff);
            }
            delayedReplays.addLast(new DelayedReplay(System.currentTimeMillis(), identity, answer(from)));
        }
        long now = System.currentTimeMillis();
        while (!delayedReplays.isEmpty() && now - delayedReplays.peekFirst().askedAtMs() >= replayDelayMs) {
            DelayedReplay due = delayedReplays.removeFirst();
            for (byte[][] frames : due.replies()) {
                reply(due.identity(), frames[0], frames[1], frames[2]);
            }
        }
    }

    /** The replies to a request from {@code from}, read from the buffer as it is now: batches, then the end marker. */
    private List<byte[][]> answer(long from) {
        List<byte[][]> replies = new ArrayList<>();
        long sequence = firstBuffered;
        for (byte[] payload : buffer) {
            if (sequence >= from) {
                if (cutReplayAfter >= 0 && replies.size() == cutReplayAfter) {
                    // As when the ROUTER drops at its high-water mark: no more replies, no end marker.
                    cutReplayAfter = -1;
                    return replies;
                }
                replies.add(new byte[][] {topic, WireFrames.sequenceFrame(sequence), payload});
            }
            sequence++;
        }
        replies.add(new byte[][] {EMPTY, WireFrames.sequenceFrame(WireFrames.END_OF_REPLAY), EMPTY});
        return replies;
    }

    private void reply(byte[] identity, byte[] topicFrame, byte[] sequence, byte[] payload) {
        // Non-blocking, not mandatory: past the high-water mark the ROUTER drops, silently, like vLLM's.
        router.send(identity, ZMQ.SNDMORE | ZMQ.DONTWAIT);
        router.send(EMPTY, ZMQ.SNDMORE | ZMQ.DONTWAIT);
        router.send(topicFrame, ZMQ.SNDMORE | ZMQ.DONTWAIT);
        router.send(sequence, ZMQ.SNDMORE | ZMQ.DONTWAIT);
        router.send(payload, ZMQ.DONTWAIT);
    }

    /**
     * Caps the live socket's send queue at {@code messages} (vLLM's is 100,000, as here by default): beyond it the
     * publisher drops, as a real one does when its subscriber cannot keep up. Takes effect for connections made
     * after the call.
     */
    public void limitSendQueue(int messages) {
        pub.setSndHWM(messages);
    }

    /**
     * Caps the live socket's kernel send buffer (SO_SNDBUF) at {@code bytes}; left alone, Linux grows it to a few MB,
     * which holds thousands of batches before the send queue fills and the publisher drops. For tests that want a
     * subscriber that falls behind to lose batches within seconds. Takes effect for connections made after the call.
     */
    public void limitSendBuffer(int bytes) {
        pub.setSendBufferSize(bytes);
    }

    /** The next {@code count} batches are buffered but never sent live, as if lost on the way. */
    public void dropLive(int count) {
        dropLive += count;
    }

    /** The next replay stops after {@code replies} batches, without its end marker. */
    public void cutNextReplayAfter(int replies) {
        cutReplayAfter = replies;
    }

    /**
     * From now on each replay answer, read from the buffer when the request arrives (as vLLM's replay thread reads
     * it), reaches the socket {@code millis} after the request, as over a slow link; {@link Long#MAX_VALUE} holds
     * them until this is called again, and 0 sends what waits at once. For tests of what ingest does meanwhile.
     */
    public void delayReplays(long millis) {
        replayDelayMs = millis;
    }

    /** The process restarts in place: sequence from 0, an empty cache and buffer, new hash seed. */
    public void restart() {
        restarts++;
        // Answers the old process had not sent yet die with it.
        delayedReplays.clear();
        nextSequence = 0;
        firstBuffered = 0;
        buffer.clear();
        workload.restart();
    }

    /** The engine goes away (sockets closed): steps taken until {@link #comeBack()} are buffered only. */
    public void goAway() {
        offline = true;
        delayedReplays.clear();
        pub.close();
        router.close();
    }

    /** The engine is reachable again at the same address. */
    public void comeBack() {
        bind();
        offline = false;
    }

    public void close() {
        if (!offline) {
            pub.close();
            router.close();
        }
    }
}
