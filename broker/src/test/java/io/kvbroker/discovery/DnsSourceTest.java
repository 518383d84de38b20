package io.kvbroker.discovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.testing.Await;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * A headless Service resolved through a stub resolver: pods join, leave (a pod that is not Ready leaves the records),
 * come back at a new address, and a resolver outage keeps the last answer.
 */
class DnsSourceTest {
    private static final long GRACE_MS = 1_000;
    private final Map<String, List<InetAddress>> records = new ConcurrentHashMap<>();
    private final EngineRegistry registry = new EngineRegistry();
    private final RecordingTarget target = new RecordingTarget();
    private final AtomicLong clock = new AtomicLong();
    private final DnsService service = new DnsService("vllm.ns.svc", "Qwen/Qwen3-0.6B", 5557, Optional.of(5600), 2,
            "kv@{podIP}@{model}");
    private final DnsSource source = new DnsSource(List.of(service), 10_000, host -> {
        List<InetAddress> answer = records.get(host);
        if (answer == null) {
            throw new UnknownHostException(host);
        }
        return answer;
    });
    private final EngineDiscovery discovery = new EngineDiscovery(registry, target, List.of(source), GRACE_MS,
            clock::get);

    private static InetAddress ip(String address) throws UnknownHostException {
        return InetAddress.getByName(address);
    }

    private void resolve() {
        discovery.report("dns", source.resolveAll());
    }

    @Test
    void everyAddressIsAPodWithOneEnginePerRankAtPortPlusRank() throws Exception {
        records.put("vllm.ns.svc", List.of(ip("10.1.0.5")));
        resolve();
        assertThat(target.take()).containsExactly("add 0", "add 1");
        var rank1 = registry.find(new EngineKey("10.1.0.5", 1)).orElseThrow().spec();
        assertThat(rank1.endpoint()).isEqualTo(new Endpoint("tcp", "10.1.0.5", 5558));
        assertThat(rank1.replayEndpoint()).contains(new Endpoint("tcp", "10.1.0.5", 5601));
        assertThat(rank1.topic()).isEqualTo("kv@10.1.0.5@Qwen/Qwen3-0.6B");
        assertThat(rank1.model()).isEqualTo("Qwen/Qwen3-0.6B");
    }

    @Test
    void podThatLeavesTheRecordsIsRemovedAfterTheGracePeriod() throws Exception {
        records.put("vllm.ns.svc", List.of(ip("10.1.0.5"), ip("10.1.0.6")));
        resolve();
        target.take();
        // 10.1.0.6 is no longer Ready: the headless Service stops listing it.
        records.put("vllm.ns.svc", List.of(ip("10.1.0.5")));
        resolve();
        assertThat(target.take()).isEmpty();
        clock.addAndGet(GRACE_MS);
        resolve();
        assertThat(target.take()).containsExactlyInAnyOrder("remove 2", "remove 3");
        // Ready again: a new engine (its blocks were cleared when it was removed).
        records.put("vllm.ns.svc", List.of(ip("10.1.0.5"), ip("10.1.0.6")));
        resolve();
        assertThat(target.take()).containsExactlyInAnyOrder("add 4", "add 5");
    }

    @Test
    void podBackAtANewAddressIsANewEngineAndTheOldOneGoesAfterTheGracePeriod() throws Exception {
        records.put("vllm.ns.svc", List.of(ip("10.1.0.5")));
        resolve();
        target.take();
        records.put("vllm.ns.svc", List.of(ip("10.1.0.7")));
        resolve();
        assertThat(target.take()).containsExactly("add 2", "add 3");
        clock.addAndGet(GRACE_MS);
        resolve();
        assertThat(target.take()).containsExactlyInAnyOrder("remove 0", "remove 1");
        assertThat(registry.live()).extracting(e -> e.spec().endpoint().host()).containsOnly("10.1.0.7");
    }

    @Test
    void resolverOutageKeepsTheLastAnswer() throws Exception {
        records.put("vllm.ns.svc", List.of(ip("10.1.0.5")));
        resolve();
        target.take();
        records.remove("vllm.ns.svc");
        resolve();
        clock.addAndGet(GRACE_MS * 10);
        resolve();
        assertThat(target.take()).isEmpty();
        assertThat(registry.live()).hasSize(2);
    }

    @Test
    void pollsOnTheSchedulerOnceStarted() throws Exception {
        records.put("vllm.ns.svc", List.of(ip("10.1.0.5")));
        DnsSource fast = new DnsSource(List.of(service), 100, host -> records.get(host));
        EngineDiscovery live = new EngineDiscovery(registry, target, List.of(fast), GRACE_MS, clock::get);
        live.start();
        try {
            assertThat(target.take()).as("the first answer is in before start returns").hasSize(2);
            records.put("vllm.ns.svc", List.of(ip("10.1.0.5"), ip("10.1.0.8")));
            Await.until("the scheduled poll's answer", java.time.Duration.ofSeconds(10),
                    () -> target.calls().size() >= 2);
            assertThat(target.take()).containsExactlyInAnyOrder("add 2", "add 3");
        } finally {
            live.stop(java.time.Duration.ofSeconds(5));
        }
    }
}
