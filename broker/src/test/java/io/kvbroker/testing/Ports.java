package io.kvbroker.testing;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/** Finds runs of consecutive free TCP ports on loopback, for tests that need port ranges (rank offsets). */
public final class Ports {
    private Ports() {
    }

    /**
     * Whether {@code port} on loopback can be bound now. A ZeroMQ socket's listener closes after the socket does (on
     * its I/O thread), so binding the same port again at once can fail: wait for this first.
     */
    public static boolean free(int port) {
        try (ServerSocket probe = new ServerSocket(port, 1, InetAddress.getByName("127.0.0.1"))) {
            return true;
        } catch (IOException taken) {
            return false;
        }
    }

    public static int freeRange(int count) {
        for (int attempt = 0; attempt < 100; attempt++) {
            int base = ThreadLocalRandom.current().nextInt(20_000, 60_000);
            List<ServerSocket> held = new ArrayList<>();
            try {
                for (int i = 0; i < count; i++) {
                    held.add(new ServerSocket(base + i, 1, InetAddress.getByName("127.0.0.1")));
                }
                return base;
            } catch (IOException taken) {
                // Try another base.
            } finally {
                for (ServerSocket socket : held) {
                    try {
                        socket.close();
                    } catch (IOException ignored) {
                        // Closing a probe socket.
                    }
                }
            }
        }
        throw new IllegalStateException("no free range of " + count + " ports");
    }
}
