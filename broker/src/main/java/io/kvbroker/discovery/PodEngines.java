package io.kvbroker.discovery;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Reads the engines a vLLM pod runs from its annotations (or labels of the same name), with the defaults documented
 * in {@code docs/operations.md}.
 *
 * <p>Design note: model names hold '/', which label values may not, so annotations come first; the selector label is
 * the only one that has to be a label. With multi-node data parallelism a pod runs global ranks
 * {@code start..start+size-1}, and vLLM offsets both ports by the global rank, so the engines are named by
 * (pod, global rank) and their ports offset the same way.
 */
public final class PodEngines {
    /** The label discovery selects on by default ({@code discovery.kubernetes.labelSelector}). */
    public static final String SELECTOR_LABEL = "kvbroker.io/kv-events";
    public static final String SELECTOR_VALUE = "enabled";
    /** The served model name (required). */
    public static final String MODEL = "kvbroker.io/model";
    /** The PUB port of global rank 0 (default {@value #DEFAULT_EVENTS_PORT}). */
    public static final String EVENTS_PORT = "kvbroker.io/events-port";
    /** The replay ROUTER port of global rank 0 (default: no replay, as in vLLM). */
    public static final String REPLAY_PORT = "kvbroker.io/replay-port";
    /** Data-parallel ranks in this pod (default 1). */
    public static final String DATA_PARALLEL_SIZE = "kvbroker.io/data-parallel-size";
    /** Global rank of the pod's first rank, for multi-node data parallelism (default 0). */
    public static final String DATA_PARALLEL_START_RANK = "kvbroker.io/data-parallel-start-rank";
    /** The engines' topic; {@code {podIP}}, {@code {pod}} and {@code {model}} are filled in (default empty). */
    public static final String TOPIC = "kvbroker.io/topic";
    /** The container running vLLM, whose container ID is the restart signal (default: the pod's first). */
    public static final String CONTAINER = "kvbroker.io/container";
    public static final int DEFAULT_EVENTS_PORT = 5557;
    private static final int MAX_RANKS = 1024;

    private PodEngines() {
    }

    /** Why a pod that matched the selector has no engines; {@code null} when it has some. */
    record Result(Set<DiscoveredEngine> engines, String problem) {
    }

    /** The engines of a pod: none unless it is Running, Ready, has an IP and is not being deleted. */
    static Result of(Pod pod) {
        if (!serving(pod)) {
            return new Result(Set.of(), null);
        }
        String name = pod.getMetadata().getNamespace() + "/" + pod.getMetadata().getName();
        String ip = pod.getStatus().getPodIP();
        String model = value(pod, MODEL);
        if (model == null || model.isBlank()) {
            return new Result(Set.of(), "annotation " + MODEL + " is missing");
        }
        int port;
        Optional<Integer> replayPort;
        int size;
        int start;
        try {
            port = number(pod, EVENTS_PORT, DEFAULT_EVENTS_PORT, 1, 65_535);
            String replay = value(pod, REPLAY_PORT);
            replayPort = replay == null || replay.isBlank() || replay.equals("none") ? Optional.empty()
                    : Optional.of(number(pod, REPLAY_PORT, 0, 1, 65_535));
            size = number(pod, DATA_PARALLEL_SIZE, 1, 1, MAX_RANKS);
            start = number(pod, DATA_PARALLEL_START_RANK, 0, 0, MAX_RANKS * 64);
            int last = start + size - 1;
            if (port + last > 65_535 || replayPort.map(r -> r + last > 65_535).orElse(false)) {
                return new Result(Set.of(), "rank " + last + " puts a port past 65535");
            }
            if (replayPort.isPresent() && replayPort.get() < port + last + 1 && port < replayPort.get() + last + 1) {
                return new Result(Set.of(), "replay ports overlap the events ports: keep " + REPLAY_PORT
                        + " at least " + (last + 1) + " away from " + EVENTS_PORT);
            }
        } catch (IllegalArgumentException e) {
            return new Result(Set.of(), e.getMessage());
        }
        String topicTemplate = value(pod, TOPIC);
        String topic = topicTemplate == null ? "" : topicTemplate.replace("{podIP}", ip)
                .replace("{pod}", pod.getMetadata().getName()).replace("{model}", model);
        String instance = pod.getMetadata().getUid() + "/" + containerId(pod);
        Set<DiscoveredEngine> engines = new LinkedHashSet<>();
        for (int rank = start; rank < start + size; rank++) {
            int offset = rank;
            Endpoint pub = new Endpoint("tcp", ip, port + rank);
            Optional<Endpoint> replay = replayPort.map(r -> new Endpoint("tcp", ip, r + offset));
            engines.add(new DiscoveredEngine(new EngineSpec(new EngineKey(name, rank), model, pub, replay, topic),
                    instance));
        }
        return new Result(engines, null);
    }

    /** Running, Ready, with an address, and not terminating. */
    static boolean serving(Pod pod) {
        if (pod.getStatus() == null || pod.getMetadata().getDeletionTimestamp() != null) {
            return false;
        }
        String ip = pod.getStatus().getPodIP();
        if (!"Running".equals(pod.getStatus().getPhase()) || ip == null || ip.isBlank()) {
            return false;
        }
        for (PodCondition condition : pod.getStatus().getConditions()) {
            if ("Ready".equals(condition.getType())) {
                return "True".equals(condition.getStatus());
            }
        }
        return false;
    }

    /** The vLLM container's ID (empty until it has one): a new ID under the same pod is a new process. */
    private static String containerId(Pod pod) {
        String wanted = value(pod, CONTAINER);
        for (ContainerStatus status : pod.getStatus().getContainerStatuses()) {
            boolean first = wanted == null && pod.getSpec() != null && !pod.getSpec().getContainers().isEmpty()
                    && pod.getSpec().getContainers().get(0).getName().equals(status.getName());
            if (first || status.getName().equals(wanted)) {
                return status.getContainerID() == null ? "" : status.getContainerID();
            }
        }
        return "";
    }

    private static String value(Pod pod, String key) {
        Map<String, String> annotations = pod.getMetadata().getAnnotations();
        if (annotations != null && annotations.containsKey(key)) {
            return annotations.get(key).strip();
        }
        Map<String, String> labels = pod.getMetadata().getLabels();
        return labels == null ? null : labels.get(key);
    }

    private static int number(Pod pod, String key, int fallback, int min, int max) {
        String text = value(pod, key);
        if (text == null || text.isBlank()) {
            return fallback;
        }
        try {
            int value = Integer.parseInt(text.strip());
            if (value >= min && value <= max) {
                return value;
            }
        } catch (NumberFormatException e) {
            // Reported below with the key.
        }
        throw new IllegalArgumentException(key + " must be an integer from " + min + " to " + max + ", was '"
                + text + "'");
    }
}
