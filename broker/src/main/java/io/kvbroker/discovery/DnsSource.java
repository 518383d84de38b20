package io.kvbroker.discovery;

import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Engines behind headless Services: every A (or AAAA) record of a service's name is one pod, resolved again every
 * {@code discovery.dns.intervalMs}.
 *
 * <p>Design note: a headless Service lists only Ready pods, so readiness comes for free; what DNS cannot say is which
 * pod an address is or whether its process restarted, so the engine is named by its address (a pod back with a new
 * address is a new engine) and restarts are left to the sequence checks. A name that fails to resolve keeps its last
 * answer: a resolver outage must not look like every engine leaving at once. An empty answer is believed.
 */
public final class DnsSource implements EngineSource {
    private static final Logger LOG = LoggerFactory.getLogger(DnsSource.class);

    /** Resolves a name to its addresses; the JVM's resolver in production, a stub in tests. */
    @FunctionalInterface
    public interface Resolver {
        List<InetAddress> resolve(String host) throws UnknownHostException;
    }

    /** The JVM's resolver, which honours the JVM's DNS cache TTL. */
    public static final Resolver SYSTEM = host -> List.of(InetAddress.getAllByName(host));

    private final List<DnsService> services;
    private final long intervalMs;
    private final Resolver resolver;
    private final List<Set<DiscoveredEngine>> lastAnswers = new ArrayList<>();
    private final Set<String> failing = new LinkedHashSet<>();
    private volatile ScheduledFuture<?> polling;

    public DnsSource(List<DnsService> services, long intervalMs, Resolver resolver) {
        this.services = List.copyOf(services);
        this.intervalMs = intervalMs;
        this.resolver = resolver;
        for (int i = 0; i < this.services.size(); i++) {
            lastAnswers.add(Set.of());
        }
    }

    @Override
    public String name() {
        return "dns";
    }

    @Override
    public void start(Consumer<Set<DiscoveredEngine>> report, ScheduledExecutorService scheduler) {
        report.accept(resolveAll());
        polling = scheduler.scheduleWithFixedDelay(() -> report.accept(resolveAll()), intervalMs, intervalMs,
                TimeUnit.MILLISECONDS);
    }

    /** Resolves every service once; a service that fails keeps its previous answer. */
    synchronized Set<DiscoveredEngine> resolveAll() {
        Set<DiscoveredEngine> all = new LinkedHashSet<>();
        for (int i = 0; i < services.size(); i++) {
            DnsService service = services.get(i);
            try {
                lastAnswers.set(i, engines(service, resolver.resolve(service.host())));
                if (failing.remove(service.host())) {
                    LOG.info("DNS name {} resolves again", service.host());
                }
            } catch (UnknownHostException | RuntimeException e) {
                if (failing.add(service.host())) {
                    LOG.warn("DNS name {} does not resolve ({}); keeping its last {} engines", service.host(),
                            e.getMessage(), lastAnswers.get(i).size());
                }
            }
            all.addAll(lastAnswers.get(i));
        }
        return all;
    }

    /** One engine per address and rank, at the service's ports plus the rank. */
    static Set<DiscoveredEngine> engines(DnsService service, List<InetAddress> addresses) {
        Set<DiscoveredEngine> engines = new LinkedHashSet<>();
        for (InetAddress address : addresses) {
            String ip = address.getHostAddress();
            Endpoint pub = new Endpoint("tcp", ip, service.port());
            Optional<Endpoint> replay = service.replayPort().map(port -> new Endpoint("tcp", ip, port));
            String topic = service.topic().replace("{podIP}", ip).replace("{model}", service.model());
            for (int rank = 0; rank < service.dataParallelSize(); rank++) {
                int offset = rank;
                EngineSpec spec = new EngineSpec(new EngineKey(ip, rank), service.model(), pub.plusPort(rank),
                        replay.map(endpoint -> endpoint.plusPort(offset)), topic);
                engines.add(new DiscoveredEngine(spec, ""));
            }
        }
        return engines;
    }

    @Override
    public void stop() {
        ScheduledFuture<?> task = polling;
        if (task != null) {
            task.cancel(false);
        }
    }
}
