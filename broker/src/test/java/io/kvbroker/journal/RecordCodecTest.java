package io.kvbroker.journal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvbroker.core.Media;
import io.kvbroker.index.ResolvedBatch;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class RecordCodecTest {
    private static final LogRecord RECORD = new LogRecord("vllm-0/1", 3, 4_000_000_000L, 1_764_000_000_000L,
            new ResolvedBatch(List.of(
                    new ResolvedBatch.Store(new long[] {-1, 2, Long.MIN_VALUE}, true, 77, 2, new long[] {5, 0, -6},
                            Media.GPU),
                    new ResolvedBatch.Store(new long[] {9}, false, 0, 0, null, Media.CPU),
                    new ResolvedBatch.Remove(new long[] {2}, Media.GPU),
                    new ResolvedBatch.Clear(Media.STORAGE),
                    new ResolvedBatch.Evict(new long[] {-1}, new long[] {5}))));

    @Test
    void recordsRoundTripEveryChange() {
        LogRecord back = RecordCodec.decode(RecordCodec.encode(RECORD));
        assertThat(back.engine()).isEqualTo("vllm-0/1");
        assertThat(back.incarnation()).isEqualTo(3);
        assertThat(back.sequence()).isEqualTo(4_000_000_000L);
        assertThat(back.timeMs()).isEqualTo(1_764_000_000_000L);
        assertThat(render(back)).isEqualTo(render(RECORD));
    }

    @Test
    void aResetKeepsItsMarkerSequence() {
        LogRecord reset = new LogRecord("p/0", 2, LogRecord.RESET, 1, new ResolvedBatch(List.of(
                new ResolvedBatch.Clear(Media.ALL))));
        assertThat(RecordCodec.decode(RecordCodec.encode(reset)).reset()).isTrue();
    }

    @Test
    void aStoredBlockCostsSixteenBytesPlusAFewPerEvent() {
        long[] hashes = new long[100];
        long[] keys = new long[100];
        Arrays.fill(keys, 1);
        LogRecord record = new LogRecord("p/0", 1, 1, 1, new ResolvedBatch(List.of(
                new ResolvedBatch.Store(hashes, true, 1, 1, keys, Media.GPU))));
        assertThat(RecordCodec.encode(record).length).isBetween(1600, 1640);
    }

    @Test
    void damagedRecordsAreRefusedNeverMisread() {
        byte[] bytes = RecordCodec.encode(RECORD);
        for (int cut = 0; cut < bytes.length; cut++) {
            byte[] shorter = Arrays.copyOf(bytes, cut);
            assertThatThrownBy(() -> RecordCodec.decode(shorter)).isInstanceOf(JournalException.class);
        }
        byte[] otherFormat = bytes.clone();
        otherFormat[0] = 9;
        assertThatThrownBy(() -> RecordCodec.decode(otherFormat)).hasMessageContaining("format 9");
    }

    private static String render(LogRecord record) {
        StringBuilder out = new StringBuilder();
        for (ResolvedBatch.Change change : record.batch().changes()) {
            if (change instanceof ResolvedBatch.Store s) {
                out.append("S").append(Arrays.toString(s.hashes())).append(s.hasParent()).append(s.parentHash())
                        .append(s.span()).append(Arrays.toString(s.keys())).append(s.medium());
            } else if (change instanceof ResolvedBatch.Remove r) {
                out.append("R").append(Arrays.toString(r.hashes())).append(r.medium());
            } else if (change instanceof ResolvedBatch.Clear c) {
                out.append("C").append(c.media());
            } else if (change instanceof ResolvedBatch.Evict e) {
                out.append("E").append(Arrays.toString(e.hashes())).append(Arrays.toString(e.keys()));
            }
            out.append(';');
        }
        return out.toString();
    }
}
