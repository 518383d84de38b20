package io.kvbroker.event;

/**
 * The kind of KV-cache group an event belongs to, which decides whether its blocks describe a reusable prefix.
 *
 * <p>Design note: hybrid models' sliding-window and mamba groups reuse the full-attention group's hash values, so a
 * block of those groups entering the prefix index would poison its chains. Removals carry no kind on the wire; they
 * get the kind that the engine's own stores taught for the group ({@link GroupKinds}), or {@link #UNKNOWN}, which
 * never touches the prefix index.
 */
public enum GroupKind {
    FULL_ATTENTION,
    MLA_ATTENTION,
    SLIDING_WINDOW,
    MAMBA,
    /** A kind name this release of kvbroker does not know (for example chunked local attention). */
    OTHER,
    /** A store that sent no kind: engines without hybrid groups, whose only group is full attention. */
    UNSPECIFIED,
    /** A removal for a group that no store of this engine has described yet. */
    UNKNOWN;

    /** Whether blocks of this kind may enter the prefix index: full attention, MLA, or no kind given on a store. */
    public boolean reusablePrefix() {
        return this == FULL_ATTENTION || this == MLA_ATTENTION || this == UNSPECIFIED;
    }

    /** Maps a wire name ({@code kv_cache_spec_kind}); unknown names map to {@link #OTHER}. */
    public static GroupKind fromWireName(String name) {
        return switch (name) {
            case "full_attention" -> FULL_ATTENTION;
            case "mla_attention" -> MLA_ATTENTION;
            case "sliding_window" -> SLIDING_WINDOW;
            case "mamba" -> MAMBA;
            default -> OTHER;
        };
    }
}
