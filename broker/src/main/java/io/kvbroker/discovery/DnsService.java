package io.kvbroker.discovery;

import java.util.Objects;
import java.util.Optional;

/**
 * A headless Service whose A records are vLLM pods: every address is a pod serving one model, with the same ports.
 *
 * @param host the name to resolve, e.g. {@code vllm-qwen.inference.svc.cluster.local}
 * @param model the served model name of every pod behind it
 * @param port the engines' PUB port (rank r at port + r)
 * @param replayPort the engines' replay ROUTER port (rank r at replayPort + r), if they have one
 * @param dataParallelSize ranks per pod, 0..n-1
 * @param topic the engines' topic; {@code {podIP}} and {@code {model}} are replaced per address
 */
public record DnsService(String host, String model, int port, Optional<Integer> replayPort, int dataParallelSize,
        String topic) {

    public DnsService {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(replayPort, "replayPort");
        Objects.requireNonNull(topic, "topic");
    }
}
