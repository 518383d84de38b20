package io.kvbroker.ingest;

import io.kvbroker.net.AddressBlock;
import java.net.InetAddress;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Listen mode, where engines connect to kvbroker: the port range bound for their PUB sockets, how to find each
 * engine's replay socket, and which engines may connect.
 *
 * @param host address to bind
 * @param port first port (rank 0); 0 when listening is off
 * @param maxRanks ranks per pod, one port each
 * @param replayPort the engines' replay base port, or 0 when they have none
 * @param allowedTopics topics admitted besides those of registered engines, exact or with '*'; empty: any
 * @param allowedAddresses where engines may connect from; empty: anywhere
 */
public record ListenSettings(String host, int port, int maxRanks, int replayPort, List<String> allowedTopics,
        List<AddressBlock> allowedAddresses) {
    public static final ListenSettings OFF = new ListenSettings("0.0.0.0", 0, 1, 0);

    public ListenSettings {
        allowedTopics = List.copyOf(allowedTopics);
        allowedAddresses = List.copyOf(allowedAddresses);
    }

    /** Listening open to every topic and address, as before allow-lists existed. */
    public ListenSettings(String host, int port, int maxRanks, int replayPort) {
        this(host, port, maxRanks, replayPort, List.of(), List.of());
    }

    public boolean enabled() {
        return port > 0;
    }

    /** The allowed topics as one pattern, or null when any topic is allowed. */
    Pattern topicPattern() {
        if (allowedTopics.isEmpty()) {
            return null;
        }
        StringBuilder regex = new StringBuilder();
        for (String topic : allowedTopics) {
            if (regex.length() > 0) {
                regex.append('|');
            }
            regex.append(Pattern.quote(topic).replace("*", "\\E.*\\Q"));
        }
        return Pattern.compile(regex.toString(), Pattern.DOTALL);
    }

    /** Whether an engine may connect from {@code address} (null: the address is unknown, refused by a list). */
    boolean addressAllowed(InetAddress address) {
        if (allowedAddresses.isEmpty()) {
            return true;
        }
        return address != null && allowedAddresses.stream().anyMatch(block -> block.contains(address));
    }
}
