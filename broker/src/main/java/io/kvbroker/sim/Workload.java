package io.kvbroker.sim;

import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.Medium;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SplittableRandom;

/**
 * What one simulated engine's KV cache does, step by step: conversations that share system prompts and grow turn by
 * turn, a GPU block capacity with LRU eviction, LoRA adapters, an offload tier announced with the connector's
 * token-less stores, a hybrid model's sliding-window group, repeated stores of resident blocks, and rare clears.
 *
 * <p>Design note: block hashes are chained over parent hash, tokens and adapter with a seed drawn per incarnation,
 * as vLLM's are with an unpinned PYTHONHASHSEED: the same prompt hashes differently after a restart, so nothing
 * downstream may depend on engine hashes being stable. Deterministic for a given random source.
 */
public final class Workload {

    /** Shape of the workload. */
    public record Shape(int gpuCapacityBlocks, int cpuCapacityBlocks, int systemPrompts, int loraAdapters,
            boolean hybrid, int slidingWindowBlocks, double clearProbability, double repeatProbability) {
        /** A mid-sized engine: 2,000 GPU blocks, 4,000 offloaded, 8 shared system prompts, 2 adapters. */
        public static Shape typical(boolean hybrid) {
            return new Shape(2_000, 4_000, 8, 2, hybrid, 8, 0.0005, 0.02);
        }
    }

    static final int BLOCK_SIZE = 16;
    private static final int VOCABULARY = 151_936;

    private record Block(long hash, long parent, int depth, int[] tokens) {
    }

    /** One conversation: its tokens so far and its adapter (null for the base model). */
    private static final class Conversation {
        final List<Integer> tokens = new ArrayList<>();
        final String lora;

        Conversation(String lora) {
            this.lora = lora;
        }
    }

    private final SplittableRandom random;
    private final Shape shape;
    private final List<int[]> systemPrompts = new ArrayList<>();
    private final List<Conversation> conversations = new ArrayList<>();
    // Access-ordered: the eldest entry is the least recently used block.
    private final LinkedHashMap<Long, Block> gpu = new LinkedHashMap<>(1024, 0.75f, true);
    private final LinkedHashMap<Long, Block> cpu = new LinkedHashMap<>(1024, 0.75f, true);
    private long seed;

    /**
     * @param random this engine's randomness (conversations, evictions, hash seeds)
     * @param promptSeed seeds the system prompts: engines of one model share them, as a fleet serving one
     *     application does, so prefixes are found on several engines
     */
    public Workload(SplittableRandom random, long promptSeed, Shape shape) {
        this.random = random;
        this.shape = shape;
        systemPrompts.addAll(systemPrompts(promptSeed, shape.systemPrompts()));
        restart();
    }

    private static List<int[]> systemPrompts(long promptSeed, int count) {
        List<int[]> list = new ArrayList<>();
        SplittableRandom prompts = new SplittableRandom(promptSeed);
        for (int p = 0; p < count; p++) {
            int[] prompt = new int[BLOCK_SIZE * (2 + prompts.nextInt(6))];
            for (int t = 0; t < prompt.length; t++) {
                prompt[t] = prompts.nextInt(VOCABULARY);
            }
            list.add(prompt);
        }
        return list;
    }

    /**
     * The first system prompt that simulated engines of {@code model} share, computed without an engine: tools ask
     * a broker fed by simulated engines about it ({@code kvbroker score --sample-prompt}).
     */
    public static int[] sharedSystemPrompt(String model) {
        return systemPrompts(model.hashCode(), 1).get(0);
    }

    /** A shared system prompt, for sample queries. */
    public int[] systemPrompt(int index) {
        return systemPrompts.get(index % systemPrompts.size()).clone();
    }

    /** A new engine process: empty caches, a new hash seed, no conversations in flight. */
    public void restart() {
        seed = random.nextLong();
        gpu.clear();
        cpu.clear();
        conversations.clear();
    }

    /** Blocks resident on the GPU now. */
    public int gpuBlocks() {
        return gpu.size();
    }

    /** The events of one scheduler step; never empty. */
    public List<KvEvent> step() {
        List<KvEvent> events = new ArrayList<>();
        if (random.nextDouble() < shape.clearProbability()) {
            gpu.clear();
            cpu.clear();
            events.add(AllBlocksCleared.ALL);
            return events;
        }
        Conversation conversation = pickConversation();
        int turn = BLOCK_SIZE * (1 + random.nextInt(3)) + random.nextInt(BLOCK_SIZE);
        for (int t = 0; t < turn; t++) {
            conversation.tokens.add(random.nextInt(VOCABULARY));
        }
        storeChain(conversation, events);
        if (random.nextDouble() < shape.repeatProbability() && !gpu.isEmpty()) {
            // A second physical copy of a resident block, announced again.
            Block block = gpu.values().iterator().next();
            events.add(new BlockStored(new long[] {block.hash()}, block.parent() != 0, block.parent(),
                    block.tokens().clone(), BLOCK_SIZE, KvEvent.ABSENT, Medium.GPU, null, null, 0,
                    GroupKind.FULL_ATTENTION, KvEvent.ABSENT, null, null, null));
        }
        evict(events);
        return events;
    }

    private Conversation pickConversation() {
        if (conversations.isEmpty() || random.nextDouble() < 0.3) {
            String lora = shape.loraAdapters() > 0 && random.nextDouble() < 0.25
                    ? "adapter-" + random.nextInt(shape.loraAdapters()) : null;
            Conversation conversation = new Conversation(lora);
            for (int token : systemPrompts.get(random.nextInt(systemPrompts.size()))) {
                conversation.tokens.add(token);
            }
            conversations.add(conversation);
            if (conversations.size() > 64) {
                conversations.remove(0);
            }
            return conversation;
        }
        return conversations.get(random.nextInt(conversations.size()));
    }

    /** Stores the conversation's full blocks that are not resident, as one event per run of new blocks. */
    private void storeChain(Conversation conversation, List<KvEvent> events) {
        int blocks = conversation.tokens.size() / BLOCK_SIZE;
        long parent = 0;
        int runStart = -1;
        List<Long> runHashes = new ArrayList<>();
        long runParent = 0;
        for (int b = 0; b < blocks; b++) {
            long hash = hash(parent, conversation, b);
            Block resident = gpu.get(hash);
            if (resident == null) {
                if (runStart < 0) {
                    runStart = b;
                    runParent = parent;
                }
                runHashes.add(hash);
                gpu.put(hash, new Block(hash, parent, b, blockTokens(conversation, b)));
            } else if (runStart >= 0) {
                emitRun(conversation, runStart, runHashes, runParent, events);
                runStart = -1;
                runHashes.clear();
            }
            parent = hash;
        }
        if (runStart >= 0) {
            emitRun(conversation, runStart, runHashes, runParent, events);
        }
    }

    private void emitRun(Conversation conversation, int firstBlock, List<Long> hashes, long parent,
            List<KvEvent> events) {
        long[] blockHashes = hashes.stream().mapToLong(Long::longValue).toArray();
        int[] tokens = new int[blockHashes.length * BLOCK_SIZE];
        for (int t = 0; t < tokens.length; t++) {
            tokens[t] = conversation.tokens.get(firstBlock * BLOCK_SIZE + t);
        }
        List<Object> extraKeys = null;
        if (conversation.lora != null) {
            List<Object> perBlock = new ArrayList<>();
            for (int i = 0; i < blockHashes.length; i++) {
                perBlock.add(List.of(conversation.lora));
            }
            extraKeys = perBlock;
        }
        events.add(new BlockStored(blockHashes, parent != 0, parent, tokens, BLOCK_SIZE,
                conversation.lora == null ? KvEvent.ABSENT : 1 + Math.floorMod(conversation.lora.hashCode(), 7),
                Medium.GPU, conversation.lora, extraKeys, 0, GroupKind.FULL_ATTENTION, KvEvent.ABSENT, null, null,
                null));
        if (shape.hybrid()) {
            events.add(new BlockStored(blockHashes.clone(), parent != 0, parent, tokens.clone(), BLOCK_SIZE,
                    KvEvent.ABSENT, Medium.GPU, conversation.lora, extraKeys, 1, GroupKind.SLIDING_WINDOW,
                    shape.slidingWindowBlocks() * BLOCK_SIZE, null, null, null));
            // The sliding window frees the group-1 copies of blocks that fell out of the window.
            int lastDepth = firstBlock + blockHashes.length - 1;
            if (lastDepth >= shape.slidingWindowBlocks() && firstBlock >= shape.slidingWindowBlocks()) {
                long[] behind = Arrays.copyOf(blockHashes, 1);
                events.add(new BlockRemoved(behind, Medium.GPU, 1, GroupKind.UNKNOWN, null, null));
            }
        }
    }

    private void evict(List<KvEvent> events) {
        Iterator<Block> lru = gpu.values().iterator();
        while (gpu.size() > shape.gpuCapacityBlocks() && lru.hasNext()) {
            Block victim = lru.next();
            lru.remove();
            // The connector copies the block out before the GPU evicts it; vLLM evicts one block at a time.
            if (shape.cpuCapacityBlocks() > 0) {
                cpu.put(victim.hash(), victim);
                events.add(new BlockStored(new long[] {victim.hash()}, false, 0, new int[0], 0, KvEvent.ABSENT,
                        Medium.CPU, null, null, 0, GroupKind.UNSPECIFIED, KvEvent.ABSENT, "local", null, null));
            }
            events.add(new BlockRemoved(new long[] {victim.hash()}, Medium.GPU, 0, GroupKind.UNKNOWN, null, null));
        }
        Iterator<Block> cpuLru = cpu.values().iterator();
        while (cpu.size() > shape.cpuCapacityBlocks() && cpuLru.hasNext()) {
            Block victim = cpuLru.next();
            cpuLru.remove();
            events.add(new BlockRemoved(new long[] {victim.hash()}, Medium.CPU, 0, GroupKind.UNKNOWN, null, null));
        }
    }

    private long hash(long parent, Conversation conversation, int block) {
        long h = seed ^ parent * 0x9E3779B97F4A7C15L;
        for (int t = block * BLOCK_SIZE; t < (block + 1) * BLOCK_SIZE; t++) {
            h = (h ^ conversation.tokens.get(t)) * 0x100000001b3L;
        }
        if (conversation.lora != null) {
            h ^= conversation.lora.hashCode() * 0xC2B2AE3D27D4EB4FL;
        }
        h ^= h >>> 29;
        return h == 0 ? 1 : h;
    }

    private static int[] blockTokens(Conversation conversation, int block) {
        int[] tokens = new int[BLOCK_SIZE];
        for (int t = 0; t < BLOCK_SIZE; t++) {
            tokens[t] = conversation.tokens.get(block * BLOCK_SIZE + t);
        }
        return tokens;
    }
}
