package io.kvbroker.sim;

import io.kvbroker.codec.KvEventEncoder;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.zeromq.ZContext;

/**
 * Runs simulated engines on one thread: each publishes a batch per step at a fixed rate and answers replay requests
 * as they come. Other threads act on the engines only through {@link #call(Function)}, which runs on that thread.
 */
public final class Simulator implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Simulator.class);

    private final ZContext context = new ZContext(1);
    private final List<SimulatedEngine> engines = new ArrayList<>();
    private final ConcurrentLinkedQueue<Runnable> calls = new ConcurrentLinkedQueue<>();
    private final long stepIntervalNanos;
    private final Thread thread;
    private volatile boolean running = true;
    private volatile boolean stepping = true;

    /**
     * @param options one entry per engine
     * @param basePort engine i binds its PUB on basePort + 2i and its ROUTER on basePort + 2i + 1; 0 for any free
     *     ports
     * @param stepsPerSecond batches each engine publishes per second
     */
    public Simulator(List<SimulatedEngine.Options> options, int basePort, int stepsPerSecond) {
        this(stepsPerSecond, engineFactories(options, basePort));
    }

    /** Engines built by the given factories on the simulator's context: for listen mode and other layouts. */
    public Simulator(int stepsPerSecond, List<Function<ZContext, SimulatedEngine>> factories) {
        context.setLinger(0);
        // Two sockets an engine (PUB, ROUTER): JeroMQ's default of 1024 would stop near simulate.engines' limit / 4.
        context.getContext().setMaxSockets(Math.max(1024, 4 * factories.size() + 64));
        for (Function<ZContext, SimulatedEngine> factory : factories) {
            engines.add(factory.apply(context));
        }
        stepIntervalNanos = TimeUnit.SECONDS.toNanos(1) / stepsPerSecond;
        thread = new Thread(this::run, "kvbroker-simulator");
        thread.setDaemon(true);
    }

    private static List<Function<ZContext, SimulatedEngine>> engineFactories(List<SimulatedEngine.Options> options,
            int basePort) {
        List<Function<ZContext, SimulatedEngine>> factories = new ArrayList<>();
        for (int i = 0; i < options.size(); i++) {
            SimulatedEngine.Options o = options.get(i);
            int pub = basePort == 0 ? 0 : basePort + 2 * i;
            factories.add(context -> new SimulatedEngine(context, o, pub, basePort == 0 ? 0 : pub + 1));
        }
        return factories;
    }

    /** Engines of a typical mixed fleet: two models, both event forms, every fifth engine hybrid. */
    public static List<SimulatedEngine.Options> fleet(int count, long seed) {
        List<SimulatedEngine.Options> options = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            String model = i % 2 == 0 ? "sim/llama-8b" : "sim/qwen-7b";
            options.add(new SimulatedEngine.Options("sim-" + i, 0, model, "kv@sim-" + i + "@" + model,
                    i % 3 == 0 ? KvEventEncoder.Form.ARRAY : KvEventEncoder.Form.MAP, 10_000, 1_000,
                    Workload.Shape.typical(i % 5 == 4), seed + i));
        }
        return options;
    }

    public Simulator start() {
        thread.start();
        LOG.info("simulating {} engines at {} steps/s each", engines.size(),
                TimeUnit.SECONDS.toNanos(1) / stepIntervalNanos);
        return this;
    }

    /** What a broker needs to subscribe to the simulated engines, replay endpoints included. */
    public List<EngineSpec> specs() {
        return specs(true);
    }

    /**
     * What a broker needs to subscribe to the simulated engines; without {@code withReplay} the engines are configured
     * as vLLM runs by default, with no replay endpoint (their ROUTERs stay bound, unused).
     */
    public List<EngineSpec> specs(boolean withReplay) {
        List<EngineSpec> specs = new ArrayList<>();
        for (SimulatedEngine engine : engines) {
            SimulatedEngine.Options o = engine.options();
            specs.add(new EngineSpec(new EngineKey(o.pod(), o.rank()), o.model(), Endpoint.parse(engine.endpoint()),
                    withReplay ? Optional.of(Endpoint.parse(engine.replayEndpoint())) : Optional.empty(), o.topic()));
        }
        return specs;
    }

    /** Stops or resumes publishing; replay requests are answered either way. */
    public void setStepping(boolean on) {
        stepping = on;
    }

    /** Runs {@code action} on the simulator thread and returns its result. */
    public <T> T call(Function<List<SimulatedEngine>, T> action) {
        CompletableFuture<T> result = new CompletableFuture<>();
        calls.add(() -> {
            try {
                result.complete(action.apply(engines));
            } catch (RuntimeException e) {
                result.completeExceptionally(e);
            }
        });
        try {
            return result.get(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("simulator call failed: " + e.getMessage(), e);
        }
    }

    private void run() {
        long nextStep = System.nanoTime();
        while (running) {
            Runnable call;
            while ((call = calls.poll()) != null) {
                call.run();
            }
            long now = System.nanoTime();
            if (stepping && now >= nextStep) {
                for (SimulatedEngine engine : engines) {
                    engine.step();
                }
                nextStep = Math.max(nextStep + stepIntervalNanos, now - stepIntervalNanos);
            }
            for (SimulatedEngine engine : engines) {
                engine.serveReplay();
            }
            LockSupport.parkNanos(200_000);
        }
        for (SimulatedEngine engine : engines) {
            engine.close();
        }
    }

    @Override
    public void close() {
        running = false;
        try {
            thread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        context.close();
    }
}
