package io.kvbroker.discovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.testing.Await;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Discovery from the fabric8 mock API server in CRUD mode (real HTTP, real list and watch): pods become engines when
 * Running and Ready, leave after the grace period, come back at a new address as new engines, and a new container ID
 * restarts the engine.
 */
@EnableKubernetesMockClient(crud = true)
class KubernetesSourceTest {
    private static final long GRACE_MS = 1_000;
    private static final String NS = "llm";

    KubernetesClient client;

    private final EngineRegistry registry = new EngineRegistry();
    private final RecordingTarget target = new RecordingTarget();
    private final AtomicLong clock = new AtomicLong();
    private EngineDiscovery discovery;

    @BeforeEach
    void start() throws Exception {
        KubernetesSource source = new KubernetesSource(() -> client, List.of(NS, "other"),
                PodEngines.SELECTOR_LABEL + "=" + PodEngines.SELECTOR_VALUE, false);
        discovery = new EngineDiscovery(registry, target, List.of(source), GRACE_MS, clock::get);
        discovery.start();
    }

    @AfterEach
    void stop() throws Exception {
        discovery.stop(Duration.ofSeconds(5));
    }

    private void await(String what, BooleanSupplier condition) throws InterruptedException {
        Await.until(what, Duration.ofSeconds(20), condition);
        // A pass registers, then tells ingest, under discovery's lock: taking the lock waits for the pass to end.
        discovery.snapshot();
    }

    private static PodBuilder vllm(String namespace, String name, Map<String, String> annotations) {
        return new PodBuilder().withNewMetadata().withNamespace(namespace).withName(name)
                .addToLabels(PodEngines.SELECTOR_LABEL, PodEngines.SELECTOR_VALUE)
                .addToAnnotations(PodEngines.MODEL, "Qwen/Qwen3-0.6B").addToAnnotations(annotations).endMetadata()
                .withNewSpec().addNewContainer().withName("vllm").withImage("vllm/vllm-openai").endContainer()
                .addNewContainer().withName("sidecar").withImage("busybox").endContainer().endSpec();
    }

    /** Creates the pod, then sets its status the way the kubelet would. */
    private Pod create(PodBuilder pod, String ip, boolean ready, String containerId) {
        Pod created = client.pods().inNamespace(pod.buildMetadata().getNamespace()).resource(pod.build()).create();
        return setStatus(created, ip, ready, containerId);
    }

    private Pod setStatus(Pod pod, String ip, boolean ready, String containerId) {
        Pod current = client.pods().inNamespace(pod.getMetadata().getNamespace())
                .withName(pod.getMetadata().getName()).get();
        current.setStatus(new io.fabric8.kubernetes.api.model.PodStatusBuilder().withPhase("Running").withPodIP(ip)
                .withConditions(new PodConditionBuilder().withType("Ready").withStatus(ready ? "True" : "False")
                        .build())
                .withContainerStatuses(
                        new ContainerStatusBuilder().withName("sidecar").withContainerID("containerd://side").build(),
                        new ContainerStatusBuilder().withName("vllm").withContainerID(containerId).build())
                .build());
        return client.pods().inNamespace(current.getMetadata().getNamespace()).resource(current).updateStatus();
    }

    private Optional<EngineSpec> engine(String pod, int rank) {
        return registry.find(new EngineKey(pod, rank)).map(EngineRegistry.Entry::spec);
    }

    private void afterGrace() {
        clock.addAndGet(GRACE_MS);
        discovery.reconcile(clock.get());
    }

    @Test
    void runningReadyPodsBecomeEnginesWithPortsFromAnnotations() throws Exception {
        create(vllm(NS, "vllm-unready", Map.of()), "10.2.0.2", false, "containerd://u1");
        create(vllm(NS, "vllm-nomodel", Map.of()).editMetadata().removeFromAnnotations(PodEngines.MODEL)
                .endMetadata(), "10.2.0.3", true, "containerd://n1");
        create(vllm(NS, "unlabelled", Map.of()).editMetadata().withLabels(Map.of()).endMetadata(), "10.2.0.4",
                true, "containerd://x1");
        // Created last: one informer delivers a namespace's events in order, so the pods above are seen by then.
        create(vllm(NS, "vllm-a", Map.of(PodEngines.REPLAY_PORT, "5600", PodEngines.DATA_PARALLEL_SIZE, "2",
                PodEngines.TOPIC, "kv@{podIP}@{model}")), "10.2.0.1", true, "containerd://a1");
        await("both ranks of vllm-a", () -> engine("llm/vllm-a", 1).isPresent());
        EngineSpec rank1 = engine("llm/vllm-a", 1).orElseThrow();
        assertThat(rank1.endpoint()).isEqualTo(new Endpoint("tcp", "10.2.0.1", 5558));
        assertThat(rank1.replayEndpoint()).contains(new Endpoint("tcp", "10.2.0.1", 5601));
        assertThat(rank1.topic()).isEqualTo("kv@10.2.0.1@Qwen/Qwen3-0.6B");
        assertThat(engine("llm/vllm-a", 0).orElseThrow().endpoint().port()).isEqualTo(PodEngines.DEFAULT_EVENTS_PORT);
        assertThat(registry.live()).extracting(e -> e.spec().key().pod()).containsOnly("llm/vllm-a");
    }

    @Test
    void podThatStopsBeingReadyIsRemovedAfterTheGracePeriodAndIsANewEngineWhenReadyAgain() throws Exception {
        Pod pod = create(vllm(NS, "vllm-b", Map.of()), "10.2.0.5", true, "containerd://b1");
        await("vllm-b", () -> engine("llm/vllm-b", 0).isPresent());
        int firstId = registry.find(new EngineKey("llm/vllm-b", 0)).orElseThrow().id();
        target.take();
        setStatus(pod, "10.2.0.5", false, "containerd://b1");
        await("vllm-b missing", () -> discovery.snapshot().missing() == 1);
        assertThat(target.take()).as("kept during the grace period").isEmpty();
        afterGrace();
        assertThat(target.take()).containsExactly("remove " + firstId);
        setStatus(pod, "10.2.0.5", true, "containerd://b1");
        await("vllm-b back", () -> engine("llm/vllm-b", 0).isPresent());
        assertThat(registry.find(new EngineKey("llm/vllm-b", 0)).orElseThrow().id()).isNotEqualTo(firstId);
    }

    @Test
    void podBackAtANewAddressIsANewEngine() throws Exception {
        Pod pod = create(vllm(NS, "vllm-c", Map.of()), "10.2.0.6", true, "containerd://c1");
        await("vllm-c", () -> engine("llm/vllm-c", 0).isPresent());
        int firstId = registry.find(new EngineKey("llm/vllm-c", 0)).orElseThrow().id();
        target.take();
        setStatus(pod, "10.2.0.66", true, "containerd://c2");
        await("vllm-c at its new address",
                () -> engine("llm/vllm-c", 0).map(s -> s.endpoint().host().equals("10.2.0.66")).orElse(false));
        assertThat(target.take()).as("replaced, not restarted").containsExactly("remove " + firstId,
                "add " + (firstId + 1));
    }

    @Test
    void newContainerIdIsARestartSignal() throws Exception {
        Pod pod = create(vllm(NS, "vllm-d", Map.of(PodEngines.DATA_PARALLEL_SIZE, "2")), "10.2.0.7", true,
                "containerd://d1");
        await("vllm-d", () -> engine("llm/vllm-d", 1).isPresent());
        target.take();
        // The sidecar's ID is the same; the vLLM container (the pod's first) was replaced.
        setStatus(pod, "10.2.0.7", true, "containerd://d2");
        await("restart signals", () -> target.calls().size() == 2);
        assertThat(target.take()).containsExactlyInAnyOrder("restart 0", "restart 1");
    }

    @Test
    void multiNodeDataParallelNamesEnginesByGlobalRankAndOffsetsPortsByIt() throws Exception {
        create(vllm("other", "vllm-node1", Map.of(PodEngines.DATA_PARALLEL_SIZE, "2",
                PodEngines.DATA_PARALLEL_START_RANK, "2", PodEngines.EVENTS_PORT, "6000", PodEngines.REPLAY_PORT,
                "6100")), "10.3.0.1", true, "containerd://m1");
        await("ranks 2 and 3", () -> engine("other/vllm-node1", 3).isPresent());
        assertThat(engine("other/vllm-node1", 2).orElseThrow().endpoint().port()).isEqualTo(6002);
        assertThat(engine("other/vllm-node1", 3).orElseThrow().replayEndpoint().orElseThrow().port())
                .isEqualTo(6103);
        assertThat(engine("other/vllm-node1", 0)).isEmpty();
    }

    @Test
    void deletedPodIsRemovedAfterTheGracePeriod() throws Exception {
        Pod pod = create(vllm(NS, "vllm-e", Map.of()), "10.2.0.8", true, "containerd://e1");
        await("vllm-e", () -> engine("llm/vllm-e", 0).isPresent());
        target.take();
        client.pods().inNamespace(NS).resource(pod).delete();
        await("vllm-e missing", () -> discovery.snapshot().missing() == 1);
        afterGrace();
        assertThat(target.take()).containsExactly("remove 0");
        assertThat(engine("llm/vllm-e", 0)).isEmpty();
    }

    @Test
    void apiServerOutOfReachFailsStartNamingTheSetting() throws Exception {
        int closedPort = io.kvbroker.testing.Ports.freeRange(1);
        io.fabric8.kubernetes.client.Config config = new io.fabric8.kubernetes.client.ConfigBuilder()
                .withMasterUrl("http://127.0.0.1:" + closedPort).withNamespace(NS).withRequestRetryBackoffLimit(0)
                .build();
        KubernetesSource unreachable = new KubernetesSource(
                () -> new io.fabric8.kubernetes.client.KubernetesClientBuilder().withConfig(config).build(), List.of(),
                "a=b", true, 2_000);
        EngineDiscovery failing = new EngineDiscovery(new EngineRegistry(), target, List.of(unreachable), GRACE_MS,
                clock::get);
        org.assertj.core.api.Assertions.assertThatThrownBy(failing::start)
                .isInstanceOf(IllegalStateException.class).hasMessageStartingWith("discovery.kubernetes: cannot list"
                        + " pods (a=b) in [llm]");
    }
}
