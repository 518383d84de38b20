package io.kvbroker.journal;

/** Reaches the journal's package-private fault hooks from tests of other packages (a whole daemon's journal). */
public final class JournalFaults {
    private JournalFaults() {
    }

    /** Makes every write of {@code journal} take {@code millis} longer: a slow disk (0: none). */
    public static void slowWrites(Journal journal, long millis) {
        journal.slowWritesForTests(millis);
    }

    /**
     * Makes the journal's disk "full" with RocksDB's SST space limit, and a memtable flush that the limit fails (so
     * writes fail from now on), or lifts the limit.
     */
    public static void limitDisk(Journal journal, boolean full) {
        journal.limitDiskBytes(full ? 1 : 0);
        if (full) {
            try {
                journal.flushMemtables();
            } catch (JournalException expected) {
                // The flush reports the limit: RocksDB is read-only until the journal reopens it.
            }
        }
    }
}
