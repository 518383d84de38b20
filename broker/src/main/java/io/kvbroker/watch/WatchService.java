package io.kvbroker.watch;

import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.journal.Journal;
import io.kvbroker.query.RequestException;
import io.kvbroker.watch.WatchEndedException.Reason;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves Watch streams: admits them, and sends each from one of a few sending threads, as fast as its client reads.
 *
 * <p>Design note: a watcher belongs to one sending thread for its whole life, so its state needs no lock and its
 * messages go out in order. A sending thread visits its watchers whenever ingest published something or a client
 * became ready to read, sends what each can take (its {@link WatchSink}'s readiness, gRPC's for the API, is the flow
 * control; nothing is queued beyond it), and parks when none had anything to do. Ingest does not know the
 * watchers; a watcher that never reads costs nothing but its place in the list until the ring passes it and it is
 * ended.
 */
public final class WatchService implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WatchService.class);

    /** Bounds of the service. */
    public record Limits(int maxWatchers, int threads, int snapshotPartHoldings, int maxBatchesPerMessage) {
        public static Limits of(int maxWatchers, int threads) {
            return new Limits(maxWatchers, threads, 16_384, 512);
        }
    }

    /** What a watcher's stream depends on. */
    record Context(ChangeFeed feed, BlockIndex index, EngineRegistry registry, Supplier<Journal> journal,
            int granularity, PrefixScorer.Weights weights, Limits limits, Counters counters) {
    }

    /** Totals since start, for metrics and tests. */
    public static final class Counters {
        final AtomicLong opened = new AtomicLong();
        final AtomicLong fellBehind = new AtomicLong();
        final AtomicLong snapshots = new AtomicLong();
        final AtomicLong batches = new AtomicLong();
        final AtomicLong resumedEngines = new AtomicLong();

        public long opened() {
            return opened.get();
        }

        /** Watchers ended because they fell behind the buffer. */
        public long fellBehind() {
            return fellBehind.get();
        }

        /** Engine snapshots sent (whole ones, not parts). */
        public long snapshots() {
            return snapshots.get();
        }

        /** Engine batches sent. */
        public long batches() {
            return batches.get();
        }

        /** Engines resumed from the log or matched exactly, without a snapshot. */
        public long resumedEngines() {
            return resumedEngines.get();
        }
    }

    private final Context context;
    private final List<Sender> senders = new ArrayList<>();
    private final AtomicInteger open = new AtomicInteger();
    private final AtomicInteger nextSender = new AtomicInteger();

    /** @param journal the open journal, or null while there is none (or none configured) */
    public WatchService(ChangeFeed feed, BlockIndex index, EngineRegistry registry, Supplier<Journal> journal,
            PrefixScorer.Weights weights, Limits limits) {
        this.context = new Context(feed, index, registry, journal, index.granularity(), weights, limits,
                new Counters());
    }

    /** Starts the sending threads. */
    public void start() {
        for (int i = 0; i < context.limits().threads(); i++) {
            Sender sender = new Sender("kvbroker-watch-" + i);
            senders.add(sender);
            context.feed().addSender(sender.thread);
            sender.thread.start();
        }
    }

    public Counters counters() {
        return context.counters();
    }

    /** Watch streams open now. */
    public int openWatchers() {
        return open.get();
    }

    /**
     * Admits a Watch stream: validates the query and hands the stream to a sending thread, which starts it and
     * sends its events to {@code out}.
     *
     * @throws RequestException for an invalid query or too many watchers
     */
    public void open(WatchQuery query, WatchSink out) {
        for (int i = 0; i < query.engines().size(); i++) {
            String name = query.engines().get(i);
            int slash = name.lastIndexOf('/');
            if (slash <= 0 || !name.substring(slash + 1).matches("[0-9]{1,9}")) {
                throw RequestException.invalid("engines[" + i + "]", "'" + name + "' is not an engine name"
                        + " (pod/rank, as ListEngines reports pod and rank)");
            }
        }
        if (senders.isEmpty()) {
            throw new RequestException(RequestException.Kind.UNAVAILABLE, "", "Watch is not serving yet");
        }
        if (open.incrementAndGet() > context.limits().maxWatchers()) {
            open.decrementAndGet();
            throw new RequestException(RequestException.Kind.EXHAUSTED, "", "already "
                    + context.limits().maxWatchers() + " Watch streams open (watch.maxWatchers)");
        }
        Sender sender = senders.get(Math.floorMod(nextSender.getAndIncrement(), senders.size()));
        WatchSession session = new WatchSession(context, query, out, () -> {
            open.decrementAndGet();
        });
        out.listen(sender::wake, () -> {
            session.cancel();
            sender.wake();
        });
        context.counters().opened.incrementAndGet();
        sender.admit(session);
    }

    @Override
    public void close() {
        for (Sender sender : senders) {
            sender.stop();
        }
        for (Sender sender : senders) {
            context.feed().removeSender(sender.thread);
            try {
                sender.thread.join(2_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** One sending thread and its watchers. */
    private static final class Sender implements Runnable {
        final Thread thread;
        private final Queue<WatchSession> admitted = new ConcurrentLinkedQueue<>();
        private final List<WatchSession> sessions = new ArrayList<>();
        private volatile boolean stopping;

        Sender(String name) {
            thread = new Thread(this, name);
            thread.setDaemon(true);
        }

        void admit(WatchSession session) {
            admitted.add(session);
            wake();
        }

        void wake() {
            LockSupport.unpark(thread);
        }

        void stop() {
            stopping = true;
            wake();
        }

        @Override
        public void run() {
            while (!stopping) {
                for (WatchSession session; (session = admitted.poll()) != null; ) {
                    sessions.add(session);
                }
                boolean worked = false;
                for (int i = 0; i < sessions.size(); i++) {
                    WatchSession session = sessions.get(i);
                    try {
                        worked |= session.send();
                    } catch (RuntimeException e) {
                        LOG.warn("Watch stream failed: {}", e.toString(), e);
                        session.fail(new WatchEndedException(Reason.FAILED, "internal error: " + e));
                    }
                    if (session.ended()) {
                        sessions.remove(i--);
                    }
                }
                if (!worked) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
                }
            }
            for (WatchSession session : sessions) {
                session.fail(new WatchEndedException(Reason.STOPPING, "kvbroker is stopping; resume from your"
                        + " token on another replica"));
            }
            for (WatchSession session; (session = admitted.poll()) != null; ) {
                session.fail(new WatchEndedException(Reason.STOPPING, "kvbroker is stopping"));
            }
        }
    }
}
