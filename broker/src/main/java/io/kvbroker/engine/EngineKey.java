package io.kvbroker.engine;

import java.util.Objects;

/**
 * The stable name of one engine: a pod and one of its data-parallel ranks. Each (pod, rank) is its own KV cache.
 *
 * @param pod the pod (or host) the engine runs in; non-empty
 * @param rank the data-parallel rank within the pod; 0 when data parallelism is off
 */
public record EngineKey(String pod, int rank) implements Comparable<EngineKey> {

    public EngineKey {
        Objects.requireNonNull(pod, "pod");
        if (pod.isEmpty()) {
            throw new IllegalArgumentException("pod must not be empty");
        }
        if (rank < 0) {
            throw new IllegalArgumentException("rank must be >= 0, was " + rank);
        }
    }

    @Override
    public int compareTo(EngineKey other) {
        int byPod = pod.compareTo(other.pod);
        return byPod != 0 ? byPod : Integer.compare(rank, other.rank);
    }

    @Override
    public String toString() {
        return pod + "/" + rank;
    }
}
