package io.kvbroker.journal;

/**
 * Faults that tests inject into the journal's writes (a slow disk); inert unless a test sets one.
 *
 * <p>Design note: kept out of {@link Journal} and {@link GroupCommitWriter} so the production path reads without
 * them; tests reach it through {@code Journal}'s package-private hooks (and {@code JournalFaults} from other packages).
 */
final class WriteFaults {
    /** Added before every write attempt; 0 for none. */
    private volatile long slowWriteMillis;

    /** Makes every write take {@code millis} longer: a slow disk (0: none). */
    void slowWrites(long millis) {
        slowWriteMillis = millis;
    }

    /** Called before each write attempt, on the thread that writes. */
    void beforeWrite() throws InterruptedException {
        long slow = slowWriteMillis;
        if (slow > 0) {
            Thread.sleep(slow);
        }
    }
}
