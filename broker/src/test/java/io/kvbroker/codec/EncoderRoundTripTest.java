package io.kvbroker.codec;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventEncoder.Form;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKind;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import io.kvbroker.event.Medium;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** What the encoder writes in either form decodes back to the same events: simulator and decoder agree. */
class EncoderRoundTripTest {
    private static final GroupKind[] KIND_OF_GROUP = {GroupKind.FULL_ATTENTION, GroupKind.SLIDING_WINDOW,
        GroupKind.MAMBA, GroupKind.MLA_ATTENTION};
    private static final Medium[] MEDIA = {Medium.GPU, Medium.CPU, Medium.STORAGE, Medium.UNSPECIFIED, Medium.OTHER};

    private final KvEventEncoder encoder = new KvEventEncoder();
    private final KvEventDecoder decoder = new KvEventDecoder();

    @Test
    void randomBatchesSurviveBothForms() throws Exception {
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 3_000; i++) {
            Form form = i % 2 == 0 ? Form.ARRAY : Form.MAP;
            KvEventBatch batch = randomBatch(random, form);
            KvEventBatch decoded = decoder.decode(encoder.encode(batch, form));
            assertThat(decoded.timestamp()).isEqualTo(batch.timestamp());
            assertThat(decoded.dataParallelRank()).isEqualTo(batch.dataParallelRank());
            assertThat(decoded.skippedEvents()).isZero();
            assertThat(decoded.skippedFields()).isZero();
            assertThat(decoded.events()).hasSameSizeAs(batch.events());
            for (int e = 0; e < batch.events().size(); e++) {
                assertThat(describe(decoded.events().get(e))).isEqualTo(describe(batch.events().get(e)));
            }
        }
    }

    /** Every field except a removal's kind, which comes from the decoder's group table, not the wire. */
    private static String describe(KvEvent event) {
        if (event instanceof BlockStored s) {
            return "stored " + Arrays.toString(s.blockHashes()) + " " + s.hasParent() + " " + s.parentHash() + " "
                    + Arrays.toString(s.tokenIds()) + " " + s.blockSize() + " " + s.loraId() + " " + s.medium() + " "
                    + s.loraName() + " " + deepToString(s.extraKeys()) + " " + s.groupIdx() + " " + s.kind() + " "
                    + s.slidingWindow() + " " + s.locality() + " " + s.ownership() + " " + s.sessionId();
        }
        if (event instanceof BlockRemoved r) {
            return "removed " + Arrays.toString(r.blockHashes()) + " " + r.medium() + " " + r.groupIdx() + " "
                    + r.locality() + " " + r.ownership();
        }
        return event.toString();
    }

    private static String deepToString(Object value) {
        return value instanceof byte[] bytes ? Arrays.toString(bytes) : String.valueOf(value);
    }

    static KvEventBatch randomBatch(SplittableRandom random, Form form) {
        List<KvEvent> events = new ArrayList<>();
        int count = random.nextInt(6);
        for (int i = 0; i < count; i++) {
            int which = random.nextInt(10);
            if (which < 6) {
                events.add(randomStored(random, form));
            } else if (which < 9) {
                int group = random.nextInt(3) - 1;
                boolean map = form == Form.MAP;
                events.add(new BlockRemoved(hashes(random), MEDIA[random.nextInt(MEDIA.length)], group,
                        GroupKind.UNKNOWN, map && random.nextBoolean() ? "rack-3" : null,
                        map && random.nextBoolean() ? "shared" : null));
            } else {
                events.add(AllBlocksCleared.ALL);
            }
        }
        int rank = random.nextInt(3) - 1;
        return new KvEventBatch(random.nextDouble() * 2e9, rank, events, 0, 0);
    }

    private static BlockStored randomStored(SplittableRandom random, Form form) {
        long[] hashes = hashes(random);
        boolean tokenless = random.nextInt(5) == 0;
        int blockSize = tokenless ? 0 : 1 + random.nextInt(32);
        int[] tokens = new int[tokenless ? 0 : hashes.length * blockSize];
        for (int t = 0; t < tokens.length; t++) {
            tokens[t] = random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(200_000);
        }
        int group = random.nextInt(5) - 1;
        GroupKind kind = group < 0 ? GroupKind.UNSPECIFIED : KIND_OF_GROUP[group];
        List<Object> extraKeys = null;
        if (random.nextBoolean()) {
            extraKeys = new ArrayList<>();
            for (int b = 0; b < hashes.length; b++) {
                extraKeys.add(random.nextBoolean() ? null
                        : List.of("adapter-" + random.nextInt(4), List.of("mm-" + random.nextInt(99),
                                (long) random.nextInt(1000)), random.nextLong()));
            }
        }
        boolean map = form == Form.MAP;
        boolean lora = random.nextBoolean();
        boolean hasParent = random.nextBoolean();
        return new BlockStored(hashes, hasParent, hasParent ? random.nextLong() : 0L, tokens, blockSize,
                lora ? random.nextInt(8) : KvEvent.ABSENT, MEDIA[random.nextInt(MEDIA.length)],
                lora ? "lora-" + random.nextInt(8) : null, extraKeys, group, kind,
                kind == GroupKind.SLIDING_WINDOW ? 1024 : KvEvent.ABSENT,
                map && random.nextBoolean() ? "local" : null, map && random.nextBoolean() ? "owner" : null,
                map && random.nextBoolean() ? "session-9" : null);
    }

    private static long[] hashes(SplittableRandom random) {
        long[] hashes = new long[1 + random.nextInt(8)];
        for (int h = 0; h < hashes.length; h++) {
            hashes[h] = random.nextLong();
        }
        return hashes;
    }
}
