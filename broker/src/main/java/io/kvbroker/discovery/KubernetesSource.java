package io.kvbroker.discovery;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Engines from the Kubernetes API: the pods matching a label selector in one or more namespaces, followed with one
 * informer (list, then watch) per namespace, so kvbroker needs only {@code list} and {@code watch} on pods.
 *
 * <p>Design note: on every pod event the whole set is rebuilt from the informers' caches and reported, rather than
 * turned into an add or remove here: the diff, the grace period and the restart signal live in one place
 * ({@link EngineDiscovery}), and a missed or reordered event cannot leave a stale engine behind. The informer
 * re-lists after a dropped watch by itself. Rebuilding costs a pass over the matching pods per event, which is small
 * next to the API server's own work for a fleet of GPUs.
 */
public final class KubernetesSource implements EngineSource {
    private static final Logger LOG = LoggerFactory.getLogger(KubernetesSource.class);
    /** How long start waits for the first list: an API server out of reach fails start-up rather than hang it. */
    private static final long START_TIMEOUT_MS = 30_000;

    private final Supplier<KubernetesClient> clients;
    private final List<String> configuredNamespaces;
    private final String labelSelector;
    private final boolean ownsClient;
    private final long startTimeoutMs;
    private final List<SharedIndexInformer<Pod>> informers = new ArrayList<>();
    private final Set<String> warned = new HashSet<>();
    private volatile Consumer<Set<DiscoveredEngine>> report;
    private KubernetesClient client;
    private List<String> namespaces = List.of();

    /**
     * @param clients makes the client at start (in a pod: the service account's token and namespace)
     * @param namespaces namespaces to watch; empty for the client's own (the pod's namespace in a cluster)
     * @param ownsClient whether {@link #stop()} closes the client
     */
    public KubernetesSource(Supplier<KubernetesClient> clients, List<String> namespaces, String labelSelector,
            boolean ownsClient) {
        this(clients, namespaces, labelSelector, ownsClient, START_TIMEOUT_MS);
    }

    KubernetesSource(Supplier<KubernetesClient> clients, List<String> namespaces, String labelSelector,
            boolean ownsClient, long startTimeoutMs) {
        this.startTimeoutMs = startTimeoutMs;
        this.clients = clients;
        this.configuredNamespaces = List.copyOf(namespaces);
        this.labelSelector = labelSelector;
        this.ownsClient = ownsClient;
    }

    /** In a pod, the client the service account configures; elsewhere the kubeconfig's. */
    public static KubernetesSource fromEnvironment(List<String> namespaces, String labelSelector) {
        return new KubernetesSource(() -> new KubernetesClientBuilder().build(), namespaces, labelSelector, true);
    }

    @Override
    public String name() {
        return "kubernetes";
    }

    @Override
    public void start(Consumer<Set<DiscoveredEngine>> report, ScheduledExecutorService scheduler)
            throws InterruptedException {
        ResourceEventHandler<Pod> handler = new ResourceEventHandler<>() {
            @Override
            public void onAdd(Pod pod) {
                publish();
            }

            @Override
            public void onUpdate(Pod before, Pod after) {
                publish();
            }

            @Override
            public void onDelete(Pod pod, boolean finalStateUnknown) {
                publish();
            }
        };
        try {
            client = clients.get();
            // Outside a pod a kubeconfig may name no namespace: Kubernetes' own default then.
            namespaces = configuredNamespaces.isEmpty()
                    ? List.of(Objects.requireNonNullElse(client.getNamespace(), "default")) : configuredNamespaces;
            for (String namespace : namespaces) {
                SharedIndexInformer<Pod> informer = client.pods().inNamespace(namespace)
                        .withLabelSelector(labelSelector).runnableInformer(0);
                informer.addEventHandler(handler);
                informers.add(informer);
                // Waits for the first list: the pods there now are known when start returns.
                informer.start().toCompletableFuture().get(startTimeoutMs, TimeUnit.MILLISECONDS);
            }
        } catch (RuntimeException | ExecutionException | TimeoutException e) {
            stop();
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            throw new IllegalStateException("discovery.kubernetes: cannot list pods (" + labelSelector + ") in "
                    + namespaces + ": " + (e instanceof TimeoutException ? "no answer in " + startTimeoutMs + " ms"
                    : cause.getMessage()), cause);
        }
        this.report = report;
        LOG.info("watching pods {} in namespaces {}", labelSelector, namespaces);
        publish();
    }

    private synchronized void publish() {
        Consumer<Set<DiscoveredEngine>> target = report;
        if (target == null) {
            // Still starting: start reports the whole set once every informer has listed.
            return;
        }
        Set<DiscoveredEngine> engines = new LinkedHashSet<>();
        for (SharedIndexInformer<Pod> informer : informers) {
            for (Pod pod : informer.getStore().list()) {
                PodEngines.Result result = PodEngines.of(pod);
                engines.addAll(result.engines());
                String problem = result.problem();
                if (problem != null && warned.add(pod.getMetadata().getUid() + problem)) {
                    LOG.warn("pod {}/{} skipped: {}", pod.getMetadata().getNamespace(), pod.getMetadata().getName(),
                            problem);
                }
            }
        }
        target.accept(engines);
    }

    @Override
    public synchronized void stop() {
        report = null;
        for (SharedIndexInformer<Pod> informer : informers) {
            informer.close();
        }
        informers.clear();
        if (ownsClient && client != null) {
            client.close();
            client = null;
        }
    }
}
