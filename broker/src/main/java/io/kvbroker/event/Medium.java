package io.kvbroker.event;

/**
 * Where an engine holds a block: the medium names of vLLM's events, folded into the tiers a router weighs.
 *
 * <p>Design note: {@code FS} and {@code OBJ} were short-lived names of the storage tier, so they fold into
 * {@link #STORAGE}. A name we do not know becomes {@link #OTHER} rather than failing the batch; the index weighs it
 * like storage.
 */
public enum Medium {
    /** The engine's own GPU memory: the fastest hit. */
    GPU,
    /** Host memory of the engine's offloading connector. */
    CPU,
    /** Disk or remote storage tier (also sent as {@code FS} or {@code OBJ} by some releases). */
    STORAGE,
    /** A medium name this release of kvbroker does not know. */
    OTHER,
    /** No medium was sent ({@code nil} or field absent): releases before offloading had only the GPU. */
    UNSPECIFIED;

    /** The tier this medium counts as: an unspecified medium is the GPU, as it was when no other tier existed. */
    public Medium effective() {
        return this == UNSPECIFIED ? GPU : this;
    }

    /** Maps a wire name; unknown names map to {@link #OTHER}. */
    public static Medium fromWireName(String name) {
        return switch (name) {
            case "GPU" -> GPU;
            case "CPU" -> CPU;
            case "STORAGE", "FS", "OBJ" -> STORAGE;
            default -> OTHER;
        };
    }
}
