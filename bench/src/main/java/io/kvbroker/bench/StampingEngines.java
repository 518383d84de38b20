package io.kvbroker.bench;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.sim.SimulatedEngine;
import io.kvbroker.sim.Simulator;
import io.kvbroker.sim.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Engines on one thread that publish the simulator's workload over real ZeroMQ, each batch stamped with the wall
 * clock at the moment it is encoded and sent, as vLLM stamps {@code time.time()}; and the publish time of every batch
 * in the order sent, for the applied-lag floor.
 *
 * <p>Design note: {@link Simulator}'s engines stamp synthetic timestamps (a base plus a millisecond per sequence, so
 * tests can tell batches apart) and step all engines at once, so they cannot time delivery; these engines take the
 * same fleet (models, forms, workloads) but stamp real time and spread their steps evenly, engine after engine, as an
 * unsynchronised fleet would. No replay endpoint: on loopback with a high-water mark of 100,000 nothing is dropped.
 */
final class StampingEngines implements AutoCloseable {
    private static final int PUBLISHED_RING = 1 << 20;

    private final ZContext context = new ZContext(1);
    private final List<ZMQ.Socket> pubs = new ArrayList<>();
    private final List<SimulatedEngine.Options> fleet;
    private final List<Workload> workloads = new ArrayList<>();
    private final long[] publishedMicros = new long[PUBLISHED_RING];
    private final AtomicLong published = new AtomicLong();
    private final double batchesPerSec;
    private final Thread thread;
    private volatile boolean running = true;

    StampingEngines(int engines, int stepsPerSecond, long seed) {
        fleet = Simulator.fleet(engines, seed);
        context.getContext().setMaxSockets(Math.max(1024, 2 * engines + 64));
        for (SimulatedEngine.Options o : fleet) {
            ZMQ.Socket pub = context.createSocket(SocketType.PUB);
            pub.setSndHWM(100_000);
            pub.setLinger(0);
            pub.bindToRandomPort("tcp://127.0.0.1");
            pubs.add(pub);
            workloads.add(new Workload(new SplittableRandom(o.seed()), o.model().hashCode(), o.shape()));
        }
        batchesPerSec = (double) engines * stepsPerSecond;
        thread = new Thread(this::run, "bench-engines");
        thread.setDaemon(true);
    }

    /** Microseconds since the epoch, from the same clock the watchers read. */
    static long nowMicros() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000 + now.getNano() / 1_000;
    }

    /** The engines as a static-engines YAML file lists them. */
    String staticEnginesYaml() {
        StringBuilder yaml = new StringBuilder("engines:\n  static:\n");
        for (int i = 0; i < fleet.size(); i++) {
            SimulatedEngine.Options o = fleet.get(i);
            yaml.append("    - {pod: ").append(o.pod()).append(", model: '").append(o.model())
                    .append("', endpoint: '").append(pubs.get(i).getLastEndpoint()).append("', topic: '")
                    .append(o.topic()).append("'}\n");
        }
        return yaml.toString();
    }

    void start() {
        thread.start();
    }

    /** Batches sent so far. */
    long published() {
        return published.get();
    }

    /** When the {@code index}-th batch sent (from 0) was stamped; valid for the last 2^20 batches sent. */
    long publishedMicros(long index) {
        return publishedMicros[(int) (index & (PUBLISHED_RING - 1))];
    }

    private void run() {
        KvEventEncoder encoder = new KvEventEncoder();
        long[] sequence = new long[pubs.size()];
        List<byte[]> topics = fleet.stream().map(o -> o.topic().getBytes(StandardCharsets.UTF_8)).toList();
        long start = System.nanoTime();
        long sent = 0;
        while (running) {
            long wait = start + (long) (sent * 1e9 / batchesPerSec) - System.nanoTime();
            if (wait > 50_000) {
                LockSupport.parkNanos(wait);
                continue;
            }
            int i = (int) (sent % pubs.size());
            SimulatedEngine.Options o = fleet.get(i);
            long micros = nowMicros();
            byte[] payload = encoder.encode(new KvEventBatch(micros / 1e6, o.rank(), workloads.get(i).step(), 0, 0),
                    o.form());
            ZMQ.Socket pub = pubs.get(i);
            pub.send(topics.get(i), ZMQ.SNDMORE);
            pub.send(WireFrames.sequenceFrame(sequence[i]++), ZMQ.SNDMORE);
            pub.send(payload, 0);
            publishedMicros[(int) (sent & (PUBLISHED_RING - 1))] = micros;
            // After the store above: a reader that sees the count sees the time.
            published.set(++sent);
        }
    }

    @Override
    public void close() throws InterruptedException {
        running = false;
        thread.join(2_000);
        context.close();
    }
}
