package io.kvbroker.discovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The diff between what sources report and what is registered, driven step by step with a manual clock. */
class EngineDiscoveryTest {
    private static final long GRACE_MS = 5_000;
    private final EngineRegistry registry = new EngineRegistry();
    private final RecordingTarget target = new RecordingTarget();
    private final AtomicLong clock = new AtomicLong(1_000);
    private final EngineDiscovery discovery = new EngineDiscovery(registry, target,
            List.of(source("static"), source("dns")), GRACE_MS, clock::get);

    private static EngineSource source(String name) {
        return new EngineSource() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public void start(java.util.function.Consumer<Set<DiscoveredEngine>> report,
                    java.util.concurrent.ScheduledExecutorService scheduler) {
            }

            @Override
            public void stop() {
            }
        };
    }

    private static Set<DiscoveredEngine> set(DiscoveredEngine... engines) {
        return new java.util.LinkedHashSet<>(List.of(engines));
    }

    private static DiscoveredEngine engine(String pod, String ip, String instance) {
        return new DiscoveredEngine(new EngineSpec(new EngineKey(pod, 0), "m", new Endpoint("tcp", ip, 5557),
                Optional.empty(), ""), instance);
    }

    @Test
    void registersNewEnginesAndTellsIngest() {
        discovery.report("dns", set(engine("a", "10.0.0.1", ""), engine("b", "10.0.0.2", "")));
        assertThat(target.take()).containsExactlyInAnyOrder("add 0", "add 1");
        assertThat(registry.live()).hasSize(2);
        discovery.report("dns", set(engine("a", "10.0.0.1", ""), engine("b", "10.0.0.2", "")));
        assertThat(target.take()).as("the same set again changes nothing").isEmpty();
    }

    @Test
    void missingEngineIsRemovedOnlyAfterTheGracePeriod() {
        discovery.report("dns", set(engine("a", "10.0.0.1", ""), engine("b", "10.0.0.2", "")));
        target.take();
        discovery.report("dns", set(engine("a", "10.0.0.1", "")));
        clock.addAndGet(GRACE_MS - 1);
        discovery.reconcile(clock.get());
        assertThat(target.take()).isEmpty();
        assertThat(discovery.snapshot().missing()).isOne();
        clock.addAndGet(1);
        discovery.reconcile(clock.get());
        assertThat(target.take()).containsExactly("remove 1");
        assertThat(registry.entry(1).removed()).isTrue();
        assertThat(registry.find(new EngineKey("b", 0))).isEmpty();
    }

    @Test
    void engineBackWithinTheGracePeriodKeepsItsIdAndState() {
        discovery.report("dns", set(engine("a", "10.0.0.1", "")));
        target.take();
        discovery.report("dns", set());
        clock.addAndGet(GRACE_MS - 1);
        discovery.report("dns", set(engine("a", "10.0.0.1", "")));
        clock.addAndGet(GRACE_MS);
        discovery.reconcile(clock.get());
        assertThat(target.take()).isEmpty();
        assertThat(registry.find(new EngineKey("a", 0)).orElseThrow().id()).isZero();
    }

    @Test
    void sameNameAtANewAddressIsANewEngineWithANewId() {
        discovery.report("dns", set(engine("a", "10.0.0.1", "")));
        target.take();
        discovery.report("dns", set(engine("a", "10.0.0.9", "")));
        assertThat(target.take()).containsExactly("remove 0", "add 1");
        assertThat(registry.find(new EngineKey("a", 0)).orElseThrow().spec().endpoint().host())
                .isEqualTo("10.0.0.9");
        assertThat(discovery.snapshot().replaced()).isOne();
    }

    @Test
    void newProcessInstanceRestartsTheEngineInPlace() {
        discovery.report("dns", set(engine("a", "10.0.0.1", "uid/containerd://1")));
        target.take();
        discovery.report("dns", set(engine("a", "10.0.0.1", "uid/containerd://1")));
        assertThat(target.take()).isEmpty();
        discovery.report("dns", set(engine("a", "10.0.0.1", "uid/containerd://2")));
        assertThat(target.take()).containsExactly("restart 0");
        assertThat(discovery.snapshot().restarts()).isOne();
    }

    @Test
    void instanceLearnedLaterIsNoRestart() {
        discovery.report("dns", set(engine("a", "10.0.0.1", "")));
        target.take();
        discovery.report("dns", set(engine("a", "10.0.0.1", "uid/containerd://1")));
        assertThat(target.take()).isEmpty();
    }

    @Test
    void earlierSourceWinsAClashAndEitherKeepsTheEngineAlive() {
        discovery.report("dns", set(engine("a", "10.0.0.2", "")));
        target.take();
        discovery.report("static", set(engine("a", "10.0.0.1", "")));
        assertThat(target.take()).containsExactly("remove 0", "add 1");
        assertThat(registry.find(new EngineKey("a", 0)).orElseThrow().spec().endpoint().host())
                .isEqualTo("10.0.0.1");
        discovery.report("dns", set());
        clock.addAndGet(GRACE_MS);
        discovery.reconcile(clock.get());
        assertThat(target.take()).as("still reported by the static source").isEmpty();
    }

    @Test
    void engineTheRegistryRefusesIsSkippedAndCounted() {
        EngineSpec first = new EngineSpec(new EngineKey("a", 0), "m", new Endpoint("tcp", "10.0.0.1", 5557),
                Optional.empty(), "kv@shared@m");
        EngineSpec clash = new EngineSpec(new EngineKey("b", 0), "m", new Endpoint("tcp", "10.0.0.2", 5557),
                Optional.empty(), "kv@shared@m");
        discovery.report("dns", set(new DiscoveredEngine(first, ""), new DiscoveredEngine(clash, "")));
        assertThat(target.take()).hasSize(1);
        discovery.reconcile(clock.get());
        assertThat(discovery.snapshot().refused()).as("counted once, not per pass").isOne();
        assertThat(registry.live()).hasSize(1);
    }
}
