package io.kvbroker.journal;

/** The journal cannot be opened, read or written; the message says what is wrong and what to do. */
public final class JournalException extends RuntimeException {
    public JournalException(String message) {
        super(message);
    }

    public JournalException(String message, Throwable cause) {
        super(message, cause);
    }
}
