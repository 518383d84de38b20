package io.kvbroker.watch;

import io.kvbroker.index.ResolvedBatch;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * The applied batches of every engine in broker order, the most recent {@code capacity} of them kept in memory for
 * Watch streams, and the broker sequence numbering them.
 *
 * <p>Design note: one ring shared by all watchers is every watcher's buffer: the ingest thread writes an entry into
 * its slot and then advances {@link #next} (a volatile write), so a watcher that reads {@code next} first sees every
 * entry below it whole; an entry whose slot was written over carries another broker sequence, which is how a watcher
 * learns it fell behind. Publishing costs ingest one array store and, once per loop round, an unpark of each sending
 * thread; ingest never waits for a watcher and holds no per-watcher state. The broker sequence is the journal's log
 * sequence when there is a journal (so it names the same batch after a restart) and a count from 1 otherwise.
 */
public final class ChangeFeed {
    private final FeedEntry[] ring;
    private final int mask;
    private volatile String brokerId;
    /** The broker sequence the next entry gets; entries below it are published. */
    private volatile long next = 1;
    /** The first broker sequence of this process's feed: nothing below it was ever in the ring. */
    private volatile long start = 1;
    private final AtomicInteger removals = new AtomicInteger();
    private final List<Thread> senders = new CopyOnWriteArrayList<>();
    /** {@link #next} when the senders were last woken (ingest thread only). */
    private long woken = 1;
    /** The last broker sequence that may be sent (the journal's written position); unset: all published. */
    private volatile LongSupplier durableThrough;

    /** @param capacity entries kept; rounded up to a power of two */
    public ChangeFeed(int capacity) {
        int size = Integer.highestOneBit(Math.max(2, capacity) - 1) << 1;
        ring = new FeedEntry[size];
        mask = size - 1;
        brokerId = java.util.UUID.randomUUID().toString();
    }

    /**
     * Starts numbering at {@code firstSequence} under {@code brokerId} (the journal's, after recovery); before ingest
     * starts.
     */
    public void startAt(String brokerId, long firstSequence) {
        this.brokerId = brokerId;
        this.start = firstSequence;
        this.woken = firstSequence;
        this.next = firstSequence;
    }

    public String brokerId() {
        return brokerId;
    }

    /** The broker sequence the next batch or reset gets. */
    public long next() {
        return next;
    }

    /**
     * The first broker sequence watchers may not be sent yet: {@link #next}, or with a journal the one after its
     * last written record, so a watcher never holds a batch that a crash of this process could lose (after a restart
     * every position a watcher holds is in the log, and it resumes from there).
     */
    public long sendable() {
        LongSupplier durable = durableThrough;
        long published = next;
        return durable == null ? published : Math.min(published, durable.getAsLong() + 1);
    }

    /** Watchers are sent batches only up to {@code written} (the journal's written position); then woken. */
    public void limitToWritten(LongSupplier written) {
        this.durableThrough = written;
    }

    /** Wakes the sending threads (the journal wrote a group: more may be sent). */
    public void written() {
        wakeSenders();
    }

    /** The first broker sequence still in memory. */
    public long tail() {
        return Math.max(start, next - ring.length);
    }

    public int capacity() {
        return ring.length;
    }

    /**
     * Publishes an applied batch or reset under the broker sequence {@link #next} (ingest thread only).
     *
     * @throws IllegalStateException if {@code brokerSequence} is not the next one (the journal and feed disagree)
     */
    public void publish(long brokerSequence, int engineId, long incarnation, long sequence, long fingerprint,
            long engineTimeMicros, ResolvedBatch batch) {
        if (brokerSequence != next) {
            throw new IllegalStateException("broker sequence " + brokerSequence + " published where " + next
                    + " was next");
        }
        ring[(int) (brokerSequence & mask)] = new FeedEntry(brokerSequence, engineId, incarnation, sequence,
                fingerprint, engineTimeMicros, batch);
        next = brokerSequence + 1;
    }

    /** The entry with {@code brokerSequence}, or null if it was written over or is not published yet. */
    FeedEntry entry(long brokerSequence) {
        if (brokerSequence >= next || brokerSequence < start) {
            return null;
        }
        FeedEntry entry = ring[(int) (brokerSequence & mask)];
        return entry != null && entry.brokerSequence() == brokerSequence ? entry : null;
    }

    /** An engine left the cluster (ingest thread): watchers that announced it say so. */
    public void engineRemoved() {
        removals.incrementAndGet();
        wakeSenders();
    }

    /** How many engines were removed since start: a watcher compares it with what it last saw. */
    int removals() {
        return removals.get();
    }

    /** Wakes the sending threads if something was published since they were last woken (ingest, each round). */
    public void wake() {
        long published = next;
        if (published != woken) {
            woken = published;
            wakeSenders();
        }
    }

    private void wakeSenders() {
        for (Thread sender : senders) {
            LockSupport.unpark(sender);
        }
    }

    void addSender(Thread sender) {
        senders.add(sender);
    }

    void removeSender(Thread sender) {
        senders.remove(sender);
    }
}
