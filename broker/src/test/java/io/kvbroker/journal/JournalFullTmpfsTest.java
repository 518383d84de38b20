package io.kvbroker.journal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.SmallDisk;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The journal on a real full disk, an 8 MiB tmpfs filled to the last byte: the write-ahead log's write fails (which
 * RocksDB does not recover from by itself), the appender waits, and once the disk is freed the journal reopens its
 * database and every record reaches the log, once, in order. Skipped where a tmpfs cannot be mounted (not root).
 */
class JournalFullTmpfsTest {
    private static final int DISK_KIB = 8 * 1024;

    @TempDir
    Path dir;

    private static LogRecord record(long i) {
        ResolvedBatch batch = new ResolvedBatch(List.of(new ResolvedBatch.Remove(new long[] {i, i + 1, i + 2}, 1)));
        return new LogRecord("pod-" + (i % 7) + "/0", 1, i, 1_000 + i, batch, i * 31);
    }

    private static void append(Journal journal, long from, long to) {
        for (long i = from; i < to; i++) {
            journal.append(record(i), new Journal.Cursor(1, i, i * 31, new byte[0]));
        }
    }

    private SmallDisk mountedDisk() throws Exception {
        Optional<SmallDisk> disk = SmallDisk.mount(dir.resolve("disk"), DISK_KIB);
        assumeTrue(disk.isPresent(), "cannot mount a tmpfs here (needs root); JournalDiskFullTest's space limit runs"
                + " instead");
        return disk.get();
    }

    @Test
    void writesResumeByThemselvesOnceAFullDiskHasRoomAgain() throws Exception {
        try (SmallDisk disk = mountedDisk()) {
            Path journalDir = disk.root().resolve("journal");
            AtomicLong appended = new AtomicLong();
            Journal journal = Journal.open(journalDir, Journal.Sync.INTERVAL);
            try {
                append(journal, 0, 2_000);
                journal.flush();
                journal.awaitWrites();
                disk.fill();
                Thread appender = new Thread(() -> {
                    for (long i = 2_000; i < 20_000; i++) {
                        journal.append(record(i), new Journal.Cursor(1, i, i * 31, new byte[0]));
                        appended.set(i + 1);
                    }
                    journal.flush();
                }, "test-appender");
                appender.start();
                Await.until("journal writes stall", Duration.ofSeconds(30), () -> journal.stalledSinceMs() != 0);
                Await.until("the appender waits", Duration.ofSeconds(30),
                        () -> appender.getState() == Thread.State.WAITING);
                assertThat(appended.get()).isLessThan(20_000);
                // Retries go on failing while the disk is full, and nothing is reopened without room.
                long failures = journal.writeFailures();
                Await.until("retries while full", Duration.ofSeconds(30), () -> journal.writeFailures() > failures + 2);
                assertThat(journal.reopens()).isZero();
                assertThat(journal.stalledSinceMs()).isNotZero();

                disk.free();
                Await.until("journal writes succeed again", Duration.ofSeconds(30),
                        () -> journal.stalledSinceMs() == 0);
                appender.join(60_000);
                assertThat(appender.isAlive()).as("the appender went on once space returned").isFalse();
                journal.awaitWrites();
                assertThat(journal.reopens()).as("recovered by reopening").isEqualTo(1);
                assertThat(journal.writtenThrough()).isEqualTo(20_000);
            } finally {
                journal.close();
            }
            assertEveryRecordOnce(journalDir, 20_000);
        }
    }

    private static void assertEveryRecordOnce(Path journalDir, int count) {
        try (Journal reopened = Journal.open(journalDir, Journal.Sync.INTERVAL)) {
            List<Long> sequences = new ArrayList<>();
            reopened.forEachRecord(1, (sequence, record) -> {
                assertThat(record.encode()).as("record %d", sequence).isEqualTo(record(sequence - 1).encode());
                sequences.add(sequence);
            });
            assertThat(sequences).hasSize(count);
            assertThat(sequences.get(sequences.size() - 1)).isEqualTo((long) count);
            assertThat(reopened.cursors().get("pod-" + ((count - 1) % 7) + "/0").sequence()).isEqualTo(count - 1);
        }
    }
}
