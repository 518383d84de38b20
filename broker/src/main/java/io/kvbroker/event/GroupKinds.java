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

    /**
     * The table as bytes, for an engine's persisted cursor: one byte per group (the kind's ordinal + 1, 0 for not
     * known), the ungrouped kind first.
     */
    public byte[] toBytes() {
        int length = kinds.length;
        while (length > 0 && kinds[length - 1] == null) {
            length--;
        }
        byte[] bytes = new byte[length + 1];
        bytes[0] = (byte) (ungrouped == null ? 0 : ungrouped.ordinal() + 1);
        for (int g = 0; g < length; g++) {
            bytes[g + 1] = (byte) (kinds[g] == null ? 0 : kinds[g].ordinal() + 1);
        }
        return bytes;
    }

    /** Replaces the table with one {@link #toBytes} wrote; unknown kind numbers are left unknown. */
    public void restore(byte[] bytes) {
        clear();
        GroupKind[] all = GroupKind.values();
        for (int i = 0; i < bytes.length && i <= MAX_GROUPS; i++) {
            int ordinal = bytes[i] - 1;
            if (ordinal >= 0 && ordinal < all.length) {
                learn(i == 0 ? KvEvent.ABSENT : i - 1, all[ordinal]);
            }
        }
    }

    /** Forgets everything, for a new incarnation of the engine. */
    public void clear() {
        Arrays.fill(kinds, null);
        ungrouped = null;
    }
}
