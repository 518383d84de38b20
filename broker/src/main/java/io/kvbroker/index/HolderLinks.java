package io.kvbroker.index;

import io.kvbroker.core.HolderTable;

/**
 * Keeps the holder table, what Score and Lookup by key read, in step with the engines' blocks, and notes each holder
 * change of the write in progress when that write is resolved for the journal and Watch.
 *
 * <p>Design note: every change to the holder table goes through here (the writer's stores, removals and clears, and
 * eviction's evicting and restoring), so the {@link HoldingChanges} of a resolved batch are complete by construction.
 * A block is linked when it is the holder of its key for its engine: at most one block per (key, engine). Used by the
 * index's writer thread only (see {@link BlockIndex} on threads).
 */
final class HolderLinks {
    private final HolderTable holders;
    private final IndexStats.Counts counts;
    /** The holder changes of the write in progress, when it is resolved; null otherwise. */
    private HoldingChanges noting;

    HolderLinks(HolderTable holders, IndexStats.Counts counts) {
        this.holders = holders;
        this.counts = counts;
    }

    /** Notes the changes of the write that begins into {@code changes} (null: the write is not resolved). */
    void noteInto(HoldingChanges changes) {
        noting = changes;
    }

    /** Registers a keyed block as the holder of its key, unless another block of its engine already is. */
    void link(EngineBlocks blocks, int id) {
        long key = blocks.key(id);
        if (holders.holds(key, blocks.engineId)) {
            // A second block of this engine with the same content: kept for removals, not scored twice.
            counts.duplicateKeys++;
        } else {
            holders.add(key, blocks.engineId, blocks.span(id), blocks.media(id));
            note(key, blocks.span(id), blocks.media(id));
            blocks.addFlags(id, EngineBlocks.LINKED);
        }
    }

    /** Unregisters a block as the holder of its key, if it is. */
    void unlink(EngineBlocks blocks, int id) {
        if (blocks.linked(id)) {
            holders.remove(blocks.key(id), blocks.engineId);
            note(blocks.key(id), 0, 0);
            blocks.clearFlags(id, EngineBlocks.LINKED);
        }
    }

    /** Passes a block's media, just changed, on to its holder entry, if it is linked. */
    void mediaChanged(EngineBlocks blocks, int id) {
        if (blocks.linked(id)) {
            holders.update(blocks.key(id), blocks.engineId, blocks.span(id), blocks.media(id));
            note(blocks.key(id), blocks.span(id), blocks.media(id));
        }
    }

    /** Unregisters every block of an engine whose table is about to be dropped whole. */
    void unlinkAll(EngineBlocks blocks) {
        if (noting != null) {
            noting.drop();
        }
        for (int id : blocks.usedIds()) {
            if (blocks.linked(id)) {
                holders.remove(blocks.key(id), blocks.engineId);
            }
        }
    }

    /** Registers the linked blocks of a table restored from a checkpoint, which carries no holder table. */
    void linkRestored(EngineBlocks restored) {
        for (int id = 0; id < restored.idBound(); id++) {
            if (restored.used(id) && restored.linked(id)) {
                holders.add(restored.key(id), restored.engineId, restored.span(id), restored.media(id));
            }
        }
    }

    private void note(long key, int span, int media) {
        if (noting != null) {
            noting.set(key, span, media);
        }
    }
}
