package io.kvbroker.index;

import java.nio.BufferUnderflowException;
import java.util.function.IntFunction;

/**
 * Turns one engine's part of the index into checkpoint bytes for the journal, and such bytes back into an engine
 * table for the index to put in place of the engine's current one.
 *
 * <p>Design note: the byte layout stays in {@link EngineBlocks}, the one class that sees its arrays; a checkpoint
 * carries no holder table entries, which {@link HolderLinks#linkRestored} rebuilds from the table's linked blocks.
 * This class adds what the index knows around the layout: the engine's model, and damaged bytes reported as a bad
 * argument naming the engine. Runs on the index's writer thread (see {@link BlockIndex} on threads).
 */
final class EngineCheckpoints {
    private final IntFunction<String> modelOf;

    EngineCheckpoints(IntFunction<String> modelOf) {
        this.modelOf = modelOf;
    }

    /** An engine's table as bytes, or null if the index has no state for it ({@code blocks} null). */
    static byte[] encode(EngineBlocks blocks) {
        return blocks == null ? null : blocks.write();
    }

    /**
     * An engine's table from {@link #encode}'s bytes, not yet in the index.
     *
     * @throws IllegalArgumentException if the bytes are not a checkpoint this release can read
     */
    EngineBlocks decode(int engineId, byte[] checkpoint) {
        try {
            return EngineBlocks.read(engineId, modelOf.apply(engineId), checkpoint);
        } catch (BufferUnderflowException | IndexOutOfBoundsException e) {
            throw new IllegalArgumentException("checkpoint of engine " + engineId + " is cut short", e);
        }
    }
}
