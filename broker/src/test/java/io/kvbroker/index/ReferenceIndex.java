package io.kvbroker.index;

import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.Medium;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntFunction;

/** The index's rules written the plain way, with maps and a naive Score, for property tests to compare against. */
final class ReferenceIndex {
    /** One held block: its content key (null for an orphan or an unkeyable block), span and media. */
    record Entry(Long key, int span, int media) {
    }

    /** A score as comparable values. */
    record Score(int engineId, int gpuBlocks, int offloadBlocks, double score) {
    }

    private final int g;
    private final IntFunction<String> modelOf;
    private final ContentKeys keys;
    private final PrefixScorer.Weights weights = PrefixScorer.Weights.DEFAULT;
    final Map<Integer, Map<Long, Entry>> engines = new TreeMap<>();

    ReferenceIndex(int granularity, IntFunction<String> modelOf) {
        this.g = granularity;
        this.modelOf = modelOf;
        this.keys = new ContentKeys(granularity);
    }

    private static int bit(Medium medium) {
        return switch (medium.effective()) {
            case GPU -> Media.GPU;
            case CPU -> Media.CPU;
            case STORAGE -> Media.STORAGE;
            default -> Media.OTHER;
        };
    }

    void apply(int engine, KvEvent event) {
        Map<Long, Entry> held = engines.computeIfAbsent(engine, e -> new HashMap<>());
        if (event instanceof BlockStored s) {
            if (!s.kind().reusablePrefix()) {
                return;
            }
            int m = bit(s.medium());
            if (s.tokenless()) {
                for (long h : s.blockHashes()) {
                    Entry e = held.get(h);
                    held.put(h, e == null ? new Entry(null, 0, m) : new Entry(e.key(), e.span(), e.media() | m));
                }
                return;
            }
            int size = s.blockSize();
            long[] hashes = s.blockHashes();
            boolean keyable = size > 0 && size % g == 0 && s.tokenIds().length == hashes.length * size;
            Long parentKey;
            if (!s.hasParent()) {
                parentKey = keys.root(modelOf.apply(engine), s.loraName());
            } else {
                Entry parent = held.get(s.parentHash());
                parentKey = parent == null ? null : parent.key();
            }
            for (int b = 0; b < hashes.length; b++) {
                Entry e = held.get(hashes[b]);
                if (keyable && parentKey != null) {
                    Object extra = s.extraKeys() == null ? null : s.extraKeys().get(b);
                    long k = keys.block(parentKey, s.tokenIds(), b * size, size / g,
                            ContentKeys.normalizeExtra(extra, s.loraName()));
                    if (e == null) {
                        held.put(hashes[b], new Entry(k, size / g, m));
                    } else if (e.key() == null) {
                        held.put(hashes[b], new Entry(k, size / g, e.media() | m));
                    } else {
                        held.put(hashes[b], new Entry(e.key(), e.span(), e.media() | m));
                    }
                    parentKey = k;
                } else {
                    parentKey = null;
                    held.put(hashes[b], e == null ? new Entry(null, 0, m) : new Entry(e.key(), e.span(), e.media() | m));
                }
            }
        } else if (event instanceof BlockRemoved r) {
            if (!r.kind().reusablePrefix()) {
                return;
            }
            for (long h : r.blockHashes()) {
                drop(held, h, bit(r.medium()));
            }
        } else if (event instanceof AllBlocksCleared c) {
            int mask = c.medium() == Medium.UNSPECIFIED ? Media.ALL : bit(c.medium());
            for (long h : new ArrayList<>(held.keySet())) {
                drop(held, h, mask);
            }
        }
    }

    private static void drop(Map<Long, Entry> held, long hash, int mask) {
        Entry e = held.get(hash);
        if (e == null) {
            return;
        }
        int media = e.media() & ~mask;
        if (media == 0) {
            held.remove(hash);
        } else {
            held.put(hash, new Entry(e.key(), e.span(), media));
        }
    }

    void reset(int engine) {
        engines.remove(engine);
    }

    /** Naive Score: per engine, extend block by block from where its match ends, smallest span first. */
    List<Score> score(String model, String lora, int[] tokens) {
        long[] chain = keys.promptKeys(model, lora, tokens);
        int chunks = Math.min(chain.length, PrefixScorer.chunksToScore(tokens.length, g));
        List<Score> scores = new ArrayList<>();
        for (Map.Entry<Integer, Map<Long, Entry>> engine : engines.entrySet()) {
            int end = 0;
            int gpuEnd = 0;
            double offload = 0;
            while (true) {
                Entry next = null;
                for (Entry e : engine.getValue().values()) {
                    if (e.key() != null && end + e.span() <= chunks && e.key() == chain[end + e.span() - 1]
                            && (next == null || e.span() < next.span())) {
                        next = e;
                    }
                }
                if (next == null) {
                    break;
                }
                if ((next.media() & Media.GPU) != 0 && gpuEnd == end) {
                    gpuEnd += next.span();
                } else {
                    offload += next.span() * g * best(next.media());
                }
                end += next.span();
            }
            if (end > 0) {
                scores.add(new Score(engine.getKey(), gpuEnd, end - gpuEnd, gpuEnd * g * weights.gpu() + offload));
            }
        }
        return scores;
    }

    private double best(int media) {
        if ((media & Media.GPU) != 0) {
            return weights.gpu();
        }
        if ((media & Media.CPU) != 0) {
            return weights.cpu();
        }
        return (media & Media.STORAGE) != 0 ? weights.storage() : weights.other();
    }

    /** (engine, media) pairs holding a key, sorted. */
    List<List<Integer>> holdersOfKey(long key) {
        List<List<Integer>> holders = new ArrayList<>();
        engines.forEach((engine, held) -> held.values().forEach(e -> {
            if (e.key() != null && e.key() == key) {
                holders.add(List.of(engine, e.media()));
            }
        }));
        holders.sort((a, b) -> a.get(0) != b.get(0).intValue() ? a.get(0) - b.get(0) : a.get(1) - b.get(1));
        return holders;
    }
}
