package io.kvbroker.event;

/**
 * An engine dropped every block it held, for example after {@code reset_prefix_cache}.
 *
 * @param medium the medium that was cleared, or {@link Medium#UNSPECIFIED} for all of them (the wire form has no
 *     field today; the parameter keeps room for a per-medium clear)
 */
public record AllBlocksCleared(Medium medium) implements KvEvent {
    /** A clear of every medium, as vLLM sends it today. */
    public static final AllBlocksCleared ALL = new AllBlocksCleared(Medium.UNSPECIFIED);
}
