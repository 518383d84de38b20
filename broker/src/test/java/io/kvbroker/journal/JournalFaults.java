package io.kvbroker.journal;

/** Reaches the journal's package-private fault hooks from tests of other packages (a whole daemon's journal). */
public final class JournalFaults {
    private JournalFaults() {
    }

    /** Makes every write of {@code journal} take {@code millis} longer: a slow disk (0: none). */
    public static void slowWrites(Journal journal, long millis) {
        journal.slowWritesForTests(millis);
    }
}
