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
 * A full disk under the journal, simulated with RocksDB's SST file manager space limit: writes fail, the appending
 * (ingest) thread waits instead of losing or skipping a group, and when space returns (the journal reopens RocksDB)
 * every record reaches the log, once, in order; the same on a real full disk (a tmpfs) where the test may mount one.
 * And a slow disk, simulated by a delay before each write: the appender is held back, nothing lost.
 */
class JournalDiskFullTest {
    @TempDir
    Path dir;

    private static LogRecord record(long i) {
        ResolvedBatch batch = new ResolvedBatch(List.of(new ResolvedBatch.Remove(new long[] {i, i + 1, i + 2}, 1)));
        return new LogRecord("pod-" + (i % 7) + "/0", 1, i, 1_000 + i, batch, i * 31);
    }

    @Test
    void aFullDiskPausesTheAppenderAndLosesNothingWhenSpaceReturns() throws Exception {
        AtomicLong appended = new AtomicLong();
        Journal journal = Journal.open(dir, Journal.Sync.INTERVAL);
        try {
            appendWritten(journal, 2_000, appended);
            // The "disk" is full: the SST files may not grow, and a memtable flush fails.
            JournalFaults.limitDisk(journal, true);
            Thread appender = appendUntilHeldBack(journal, 2_000, 12_000, appended);
            assertThat(journal.writeFailures()).isPositive();

            JournalFaults.limitDisk(journal, false);
            appender.join(60_000);
            assertThat(appender.isAlive()).as("the appender went on once space returned").isFalse();
            journal.awaitWrites();
            assertThat(journal.stalledSinceMs()).isZero();
        } finally {
            journal.close();
        }
        assertThat(appended.get()).isEqualTo(12_000);
        assertEveryRecordOnce(12_000);
    }

    /**
     * A slow disk (every group write 20 ms longer): the appender is held to the in-flight bound, so what waits in
     * memory stays bounded, and every record lands once, in order.
     */
    @Test
    void aSlowDiskHoldsTheAppenderBackAndLosesNothing() throws Exception {
        try (Journal journal = Journal.open(dir, Journal.Sync.INTERVAL)) {
            journal.slowWritesForTests(20);
            for (long i = 0; i < 6_000; i++) {
                journal.append(record(i), new Journal.Cursor(1, i, i * 31, new byte[0]));
            }
            journal.flush();
            // 6,000 records are 23 groups of 256 or more: the appender could not run ahead of the disk by more than
            // the in-flight bound of 4 groups, so it waited for most of the others.
            assertThat(journal.appendWaits()).as("the appender was held back").isGreaterThanOrEqualTo(6_000
                    / Journal.GROUP_BATCHES - 5);
            journal.awaitWrites();
            assertThat(journal.writeFailures()).isZero();
        }
        assertEveryRecordOnce(6_000);
    }

    private static void append(Journal journal, long from, long to, AtomicLong appended) {
        for (long i = from; i < to; i++) {
            journal.append(record(i), new Journal.Cursor(1, i, i * 31, new byte[0]));
            appended.incrementAndGet();
        }
    }

    /** Appends the first {@code count} records and waits until they are written. */
    private static void appendWritten(Journal journal, long count, AtomicLong appended) {
        append(journal, 0, count, appended);
        journal.flush();
        journal.awaitWrites();
    }

    /** Appends records {@code from..to} on a thread of its own onto a full disk; returns once that thread waits. */
    private static Thread appendUntilHeldBack(Journal journal, long from, long to, AtomicLong appended)
            throws InterruptedException {
        Thread appender = new Thread(() -> {
            append(journal, from, to, appended);
            journal.flush();
        }, "test-appender");
        appender.start();
        Await.until("journal writes stall", Duration.ofSeconds(30), () -> journal.stalledSinceMs() != 0);
        // The appender fills the in-flight bound and waits: ingest pauses rather than drops.
        Await.until("the appender waits", Duration.ofSeconds(30), () -> appender.getState() == Thread.State.WAITING);
        assertThat(appended.get()).isLessThan(to);
        return appender;
    }

    private SmallDisk mountedDisk() throws Exception {
        Optional<SmallDisk> disk = SmallDisk.mount(dir.resolve("disk"), 8 * 1024);
        assumeTrue(disk.isPresent(), "cannot mount a tmpfs here (needs root); the space-limit case still runs");
        return disk.get();
    }

    /**
     * A real full disk, an 8 MiB tmpfs filled to the last byte: the write-ahead log's write fails (which RocksDB does
     * not recover from by itself); once the disk is freed the journal reopens its database and every record reaches
     * the log, once, in order. Skipped where a tmpfs cannot be mounted (not root).
     */
    @Test
    void writesResumeByThemselvesOnceARealFullDiskHasRoomAgain() throws Exception {
        try (SmallDisk disk = mountedDisk()) {
            Path journalDir = disk.root().resolve("journal");
            AtomicLong appended = new AtomicLong();
            Journal journal = Journal.open(journalDir, Journal.Sync.INTERVAL);
            try {
                appendWritten(journal, 2_000, appended);
                disk.fill();
                Thread appender = appendUntilHeldBack(journal, 2_000, 20_000, appended);
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

    private void assertEveryRecordOnce(int count) {
        assertEveryRecordOnce(dir, count);
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
