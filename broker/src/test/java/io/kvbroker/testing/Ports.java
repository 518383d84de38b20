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
