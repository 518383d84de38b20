package io.kvbroker.event;

import java.util.Arrays;

/**
 * One engine incarnation's table from KV-cache group index to group kind, learned from the engine's own stores.
 *
 * <p>Design note: a group's kind is fixed by the model's configuration, so the table only grows within an
 * incarnation and a new incarnation starts a new table. Not thread-safe: it belongs to the thread that decodes that
 * engine's stream.
 */
public final class GroupKinds {
    /** Group indexes beyond this are not remembered (real models have a handful of groups). */
    public static final int MAX_GROUPS = 256;

    private GroupKind[] kinds = new GroupKind[4];
    /** The kind stores without a group index taught (engines from before hybrid groups). */
    private GroupKind ungrouped;

    /** Records what a store said about its group; a store without a kind does not overwrite a known kind. */
    public void learn(int groupIdx, GroupKind kind) {
        if (groupIdx == KvEvent.ABSENT) {
            if (ungrouped == null || kind != GroupKind.UNSPECIFIED) {
                ungrouped = kind;
            }
            return;
        }
        if (groupIdx < 0 || groupIdx >= MAX_GROUPS) {
            return;
        }
        if (groupIdx >= kinds.length) {
            kinds = Arrays.copyOf(kinds, Math.max(groupIdx + 1, kinds.length * 2));
        }
        if (kinds[groupIdx] == null || kind != GroupKind.UNSPECIFIED) {
            kinds[groupIdx] = kind;
        }
    }

    /** The kind a store taught for this group, or {@link GroupKind#UNKNOWN} if none has. */
    public GroupKind kindOf(int groupIdx) {
        GroupKind kind;
        if (groupIdx == KvEvent.ABSENT) {
            kind = ungrouped;
        } else {
            kind = groupIdx >= 0 && groupIdx < kinds.length ? kinds[groupIdx] : null;
        }
        return kind == null ? GroupKind.UNKNOWN : kind;
    }

    /** Forgets everything, for a new incarnation of the engine. */
    public void clear() {
        Arrays.fill(kinds, null);
        ungrouped = null;
    }
}
