package io.kvbroker.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.ConfigLoader;
import io.kvbroker.config.Settings;
import io.kvbroker.discovery.PodEngines;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Parses every manifest under docker/k8s and the Dockerfile, and checks that names, ports, labels, paths and config
 * keys agree with each other and with the code (settings, discovery's label and annotation names).
 */
class DeploymentManifestsTest {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static Path root;
    /** Every document, by "Kind/name". */
    private static final Map<String, JsonNode> DOCS = new HashMap<>();
    private static final Map<String, String> FILE_OF = new HashMap<>();

    @BeforeAll
    static void parseAll() throws Exception {
        String property = System.getProperty("kvbroker.projectRoot");
        root = property != null && Files.exists(Path.of(property, "docker/k8s")) ? Path.of(property) : Path.of("..");
        try (Stream<Path> files = Files.list(root.resolve("docker/k8s"))) {
            for (Path file : files.filter(f -> f.toString().endsWith(".yaml")).sorted().toList()) {
                for (JsonNode doc : YAML.readValues(YAML.createParser(file.toFile()), JsonNode.class).readAll()) {
                    assertThat(doc.path("apiVersion").asText()).as(file + " apiVersion").isNotEmpty();
                    String id = doc.path("kind").asText() + "/" + doc.path("metadata").path("name").asText();
                    if (!doc.path("kind").asText().equals("Kustomization")) {
                        assertThat(doc.path("metadata").path("name").asText()).as(file + " name").isNotEmpty();
                    }
                    assertThat(DOCS.put(id, doc)).as("one " + id).isNull();
                    FILE_OF.put(id, file.getFileName().toString());
                }
            }
        }
    }

    private static JsonNode doc(String id) {
        assertThat(DOCS).containsKey(id);
        return DOCS.get(id);
    }

    /** The configuration the ConfigMap gives kvbroker, loaded and validated by the real loader. */
    private static BrokerConfig clusterConfig() throws Exception {
        String text = doc("ConfigMap/kvbroker-config").path("data").path("broker.yaml").asText();
        Path file = Files.createTempFile("broker", ".yaml");
        try {
            Files.writeString(file, text);
            return ConfigLoader.load(Optional.of(file), Map.of(), Map.of());
        } finally {
            Files.delete(file);
        }
    }

    private static JsonNode brokerContainer() {
        return doc("StatefulSet/kvbroker").path("spec").path("template").path("spec").path("containers").get(0);
    }

    private static int namedPort(JsonNode container, String name) {
        for (JsonNode port : container.path("ports")) {
            if (port.path("name").asText().equals(name)) {
                return port.path("containerPort").asInt();
            }
        }
        throw new AssertionError("no port named " + name);
    }

    @Test
    void kustomizationListsEveryKvbrokerManifest() {
        List<String> listed = new ArrayList<>();
        doc("Kustomization/").path("resources").forEach(r -> listed.add(r.asText()));
        List<String> files = FILE_OF.values().stream().distinct()
                .filter(f -> !f.equals("kustomization.yaml") && !f.equals("vllm-deployment-sample.yaml")).sorted()
                .toList();
        assertThat(listed).containsExactlyInAnyOrderElementsOf(files);
    }

    @Test
    void configMapIsAValidConfigurationWithKubernetesDiscoveryOn() throws Exception {
        BrokerConfig config = clusterConfig();
        assertThat(config.get(Settings.DISCOVERY_KUBERNETES_ENABLED)).isTrue();
        assertThat(config.get(Settings.DISCOVERY_KUBERNETES_LABEL_SELECTOR))
                .isEqualTo(PodEngines.SELECTOR_LABEL + "=" + PodEngines.SELECTOR_VALUE);
        long graceMs = doc("StatefulSet/kvbroker").path("spec").path("template").path("spec")
                .path("terminationGracePeriodSeconds").asLong() * 1000;
        assertThat(graceMs).as("terminationGracePeriodSeconds above shutdown.drainTimeoutMs")
                .isGreaterThan(config.get(Settings.SHUTDOWN_DRAIN_TIMEOUT_MS));
    }

    @Test
    void metricsPortAgreesAcrossConfigContainerProbesServiceAndScrapeAnnotation() throws Exception {
        int port = clusterConfig().get(Settings.METRICS_PORT);
        JsonNode container = brokerContainer();
        assertThat(namedPort(container, "metrics")).isEqualTo(port);
        for (String probe : List.of("startupProbe", "livenessProbe", "readinessProbe")) {
            assertThat(container.path(probe).path("httpGet").path("port").asText()).as(probe).isEqualTo("metrics");
            assertThat(container.path(probe).path("httpGet").path("path").asText()).as(probe)
                    .isEqualTo(probe.equals("readinessProbe") ? "/-/ready" : "/-/healthy");
        }
        assertThat(servicePort("metrics").path("port").asInt()).isEqualTo(port);
        assertThat(doc("StatefulSet/kvbroker").path("spec").path("template").path("metadata").path("annotations")
                .path("prometheus.io/port").asText()).isEqualTo(String.valueOf(port));
        assertThat(Settings.METRICS_PORT.defaultValue()).as("the Dockerfile's probe and EXPOSE use the default")
                .isEqualTo(port);
    }

    @Test
    void grpcPortAgreesAcrossConfigContainerAndService() throws Exception {
        int port = clusterConfig().get(Settings.GRPC_PORT);
        JsonNode container = brokerContainer();
        assertThat(namedPort(container, "grpc")).isEqualTo(port);
        assertThat(container.path("readinessProbe").has("grpc"))
                .as("readiness over HTTP: a kubelet gRPC probe cannot speak TLS").isFalse();
        assertThat(servicePort("grpc").path("port").asInt()).isEqualTo(port);
        assertThat(servicePort("grpc").path("targetPort").asText()).isEqualTo("grpc");
    }

    @Test
    void theJournalLivesOnTheVolumeClaim() throws Exception {
        assertThat(clusterConfig().get(Settings.JOURNAL_DIR)).startsWith("/var/lib/kvbroker/");
    }

    private JsonNode servicePort(String name) {
        for (JsonNode port : doc("Service/kvbroker").path("spec").path("ports")) {
            if (port.path("name").asText().equals(name)) {
                return port;
            }
        }
        throw new AssertionError("the Service has no port named " + name);
    }

    @Test
    void namesAndSelectorsTieTheObjectsTogether() {
        JsonNode set = doc("StatefulSet/kvbroker").path("spec");
        JsonNode labels = set.path("template").path("metadata").path("labels");
        assertThat(set.path("serviceName").asText()).isEqualTo("kvbroker");
        assertThat(doc("Service/kvbroker").path("spec").path("clusterIP").asText()).isEqualTo("None");
        for (JsonNode selector : List.of(set.path("selector").path("matchLabels"),
                doc("Service/kvbroker").path("spec").path("selector"),
                doc("PodDisruptionBudget/kvbroker").path("spec").path("selector").path("matchLabels"),
                set.path("template").path("spec").path("affinity").path("podAntiAffinity")
                        .path("preferredDuringSchedulingIgnoredDuringExecution").get(0).path("podAffinityTerm")
                        .path("labelSelector").path("matchLabels"))) {
            selector.fields().forEachRemaining(e -> assertThat(labels.path(e.getKey()).asText())
                    .as("selector " + e.getKey()).isEqualTo(e.getValue().asText()));
        }
        String account = set.path("template").path("spec").path("serviceAccountName").asText();
        doc("ServiceAccount/" + account);
        JsonNode binding = doc("RoleBinding/kvbroker-pod-reader");
        assertThat(binding.path("subjects").get(0).path("name").asText()).isEqualTo(account);
        assertThat(binding.path("roleRef").path("name").asText()).isEqualTo("kvbroker-pod-reader");
        String configMap = set.path("template").path("spec").path("volumes").findValue("configMap").path("name")
                .asText();
        doc("ConfigMap/" + configMap);
        assertThat(set.path("volumeClaimTemplates").get(0).path("metadata").path("name").asText()).isEqualTo("data");
    }

    @Test
    void roleGrantsOnlyListAndWatchOnPods() {
        JsonNode rules = doc("Role/kvbroker-pod-reader").path("rules");
        assertThat(rules).hasSize(1);
        assertThat(rules.get(0).path("resources").toString()).isEqualTo("[\"pods\"]");
        assertThat(rules.get(0).path("verbs").toString()).isEqualTo("[\"list\",\"watch\"]");
    }

    @Test
    void containerAndDockerfileAgreeOnConfigPathDataPathAndUser() throws Exception {
        JsonNode container = brokerContainer();
        String dockerfile = Files.readString(root.resolve("docker/Dockerfile"));
        assertThat(container.path("args").toString())
                .isEqualTo("[\"serve\",\"--config\",\"/etc/kvbroker/broker.yaml\"]");
        assertThat(dockerfile).contains("CMD [\"serve\", \"--config\", \"/etc/kvbroker/broker.yaml\"]");
        Map<String, String> mounts = new HashMap<>();
        container.path("volumeMounts").forEach(m -> mounts.put(m.path("name").asText(), m.path("mountPath").asText()));
        assertThat(mounts).containsEntry("config", "/etc/kvbroker").containsEntry("data", "/var/lib/kvbroker");
        assertThat(dockerfile).contains("VOLUME /var/lib/kvbroker", "USER 10001:10001",
                "EXPOSE " + Settings.GRPC_PORT.defaultValue() + " " + Settings.METRICS_PORT.defaultValue(),
                "/dev/tcp/127.0.0.1/" + Settings.METRICS_PORT
                        .defaultValue());
        JsonNode security = doc("StatefulSet/kvbroker").path("spec").path("template").path("spec")
                .path("securityContext");
        assertThat(security.path("runAsUser").asInt()).isEqualTo(10001);
        assertThat(security.path("runAsNonRoot").asBoolean()).isTrue();
        boolean brokerNameFromPod = false;
        for (JsonNode env : container.path("env")) {
            brokerNameFromPod |= env.path("name").asText().equals(Settings.BROKER_NAME.envName())
                    && env.path("valueFrom").path("fieldRef").path("fieldPath").asText().equals("metadata.name");
        }
        assertThat(brokerNameFromPod).as(Settings.BROKER_NAME.envName() + " from the pod name").isTrue();
    }

    @Test
    void vllmSampleTurnsEventsOnTheWayDiscoveryReadsThem() throws Exception {
        JsonNode template = doc("Deployment/vllm-qwen3").path("spec").path("template");
        assertThat(template.path("metadata").path("labels").path(PodEngines.SELECTOR_LABEL).asText())
                .isEqualTo(PodEngines.SELECTOR_VALUE);
        JsonNode annotations = template.path("metadata").path("annotations");
        String model = annotations.path(PodEngines.MODEL).asText();
        int eventsPort = annotations.path(PodEngines.EVENTS_PORT).asInt();
        int replayPort = annotations.path(PodEngines.REPLAY_PORT).asInt();
        int ranks = annotations.path(PodEngines.DATA_PARALLEL_SIZE).asInt();
        assertThat(ranks).isGreaterThan(1);
        assertThat(replayPort - eventsPort).as("replay base port at least dataParallelSize above")
                .isGreaterThanOrEqualTo(ranks);
        JsonNode container = template.path("spec").path("containers").get(0);
        assertThat(container.path("name").asText()).isEqualTo(annotations.path(PodEngines.CONTAINER).asText());
        List<String> args = new ArrayList<>();
        container.path("args").forEach(a -> args.add(a.asText()));
        assertThat(args.get(args.indexOf("--served-model-name") + 1)).isEqualTo(model);
        assertThat(args.get(args.indexOf("--data-parallel-size") + 1)).isEqualTo(String.valueOf(ranks));
        assertThat(args.get(args.indexOf("--block-size") + 1))
                .isEqualTo(String.valueOf(Settings.INDEX_GRANULARITY.defaultValue()));
        JsonNode events = new ObjectMapper().readTree(args.get(args.indexOf("--kv-events-config") + 1));
        assertThat(events.path("enable_kv_cache_events").asBoolean()).isTrue();
        assertThat(events.path("publisher").asText()).isEqualTo("zmq");
        assertThat(events.path("endpoint").asText()).isEqualTo("tcp://*:" + eventsPort);
        assertThat(events.path("replay_endpoint").asText()).isEqualTo("tcp://*:" + replayPort);
        // The topic vLLM sends is the one discovery expects from the annotation's template.
        String expectedTopic = annotations.path(PodEngines.TOPIC).asText().replace("{podIP}", "$(POD_IP)")
                .replace("{model}", model);
        assertThat(events.path("topic").asText()).isEqualTo(expectedTopic);
        assertThat(container.path("env").findValuesAsText("name")).contains("POD_IP");
        List<Integer> ports = new ArrayList<>();
        container.path("ports").forEach(p -> ports.add(p.path("containerPort").asInt()));
        for (int rank = 0; rank < ranks; rank++) {
            assertThat(ports).contains(eventsPort + rank, replayPort + rank);
        }
    }
}
