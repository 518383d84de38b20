package io.kvbroker.engine;

import java.util.Objects;

/**
 * A ZeroMQ address of an engine socket: {@code tcp://host:port} or {@code ipc://path}.
 *
 * <p>Design note: vLLM adds the data-parallel rank to the TCP port of both its endpoints, so the one operation
 * beyond parsing is {@link #plusPort(int)}. An ipc address has no port and cannot be offset.
 *
 * @param scheme {@code tcp} or {@code ipc}
 * @param host host name or address for tcp (IPv6 without brackets), the socket path for ipc
 * @param port TCP port, or 0 for ipc
 */
public record Endpoint(String scheme, String host, int port) {

    public Endpoint {
        Objects.requireNonNull(scheme, "scheme");
        Objects.requireNonNull(host, "host");
    }

    /**
     * Parses an address an engine can be reached at.
     *
     * @throws IllegalArgumentException with a message saying what is wrong
     */
    public static Endpoint parse(String address) {
        if (address == null || address.isBlank()) {
            throw new IllegalArgumentException("address is empty");
        }
        if (address.startsWith("ipc://")) {
            String path = address.substring("ipc://".length());
            if (path.isEmpty()) {
                throw new IllegalArgumentException("ipc address '" + address + "' has no path");
            }
            return new Endpoint("ipc", path, 0);
        }
        if (!address.startsWith("tcp://")) {
            throw new IllegalArgumentException("address '" + address + "' must start with tcp:// or ipc://");
        }
        String rest = address.substring("tcp://".length());
        int colon = rest.lastIndexOf(':');
        if (colon <= 0 || colon == rest.length() - 1) {
            throw new IllegalArgumentException("address '" + address + "' must be tcp://host:port");
        }
        String host = rest.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (host.equals("*") || host.equals("0.0.0.0") || host.equals("::")) {
            throw new IllegalArgumentException(
                    "address '" + address + "' is a bind address; give the host the engine can be reached at");
        }
        int port;
        try {
            port = Integer.parseInt(rest.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("address '" + address + "' has a port that is not a number");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("address '" + address + "' has port " + port + " outside 1..65535");
        }
        return new Endpoint("tcp", host, port);
    }

    /** The same host with {@code offset} added to the port, as vLLM does for data-parallel rank {@code offset}. */
    public Endpoint plusPort(int offset) {
        if (offset == 0) {
            return this;
        }
        if (!scheme.equals("tcp")) {
            throw new IllegalArgumentException("cannot offset the port of " + this + ": ipc has no port");
        }
        int shifted = port + offset;
        if (shifted > 65535) {
            throw new IllegalArgumentException("port " + port + " + rank " + offset + " is beyond 65535");
        }
        return new Endpoint(scheme, host, shifted);
    }

    @Override
    public String toString() {
        if (scheme.equals("ipc")) {
            return "ipc://" + host;
        }
        return host.indexOf(':') >= 0 ? "tcp://[" + host + "]:" + port : "tcp://" + host + ":" + port;
    }
}
