package io.kvbroker.net;

import java.net.BindException;

/**
 * Words a failure to listen on a configured port the way an operator looks for it: the setting, the port and the
 * host ({@code ingest.listen.port: port 5557 on 0.0.0.0 is already in use}), not a library's error number.
 */
public final class ListenFailure {
    private ListenFailure() {
    }

    /** The message for a port that is taken ({@code inUse}) or that cannot be bound for {@code reason}. */
    public static String message(String key, String host, int port, boolean inUse, String reason) {
        return inUse ? key + ": port " + port + " on " + host + " is already in use"
                : key + ": cannot listen on " + host + ":" + port + ": " + reason;
    }

    /**
     * The message for a JDK or Netty bind failure somewhere in {@code failure}'s causes: a {@link BindException}, or
     * the native transport's own exception (gRPC's epoll), which only its text tells apart.
     */
    public static String message(String key, String host, int port, Throwable failure) {
        String reason = String.valueOf(failure.getMessage());
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            String text = String.valueOf(cause.getMessage());
            if (text.contains("Address already in use")) {
                return message(key, host, port, true, text);
            }
            if (cause instanceof BindException) {
                reason = text;
            }
        }
        return message(key, host, port, false, reason);
    }
}
