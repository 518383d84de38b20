package io.kvbroker.net;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.regex.Pattern;

/**
 * An IP address or a CIDR block ({@code 10.0.0.0/8}, {@code fd00::/8}) that peers may connect from (listen-mode
 * engines: {@code ingest.listen.allowedAddresses}).
 *
 * <p>Design note: only literals are accepted, never names: a name would be resolved once at start-up and go stale,
 * and resolving it on every message would put DNS on the ingest thread.
 *
 * @param network the block's address bytes, host bits cleared
 * @param prefixBits leading bits that must match
 * @param text as written in the configuration
 */
public record AddressBlock(byte[] network, int prefixBits, String text) {
    private static final Pattern IPV4 = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");

    /** Parses {@code ADDRESS} or {@code ADDRESS/BITS}; the message says what is wrong. */
    public static AddressBlock parse(String text) {
        String trimmed = text.strip();
        int slash = trimmed.indexOf('/');
        byte[] address = literal(slash < 0 ? trimmed : trimmed.substring(0, slash), text);
        int bits = address.length * 8;
        if (slash >= 0) {
            try {
                bits = Integer.parseInt(trimmed.substring(slash + 1));
            } catch (NumberFormatException e) {
                bits = -1;
            }
            if (bits < 0 || bits > address.length * 8) {
                throw new IllegalArgumentException("'" + text + "': the prefix must be 0 to " + address.length * 8
                        + " bits");
            }
        }
        for (int bit = bits; bit < address.length * 8; bit++) {
            address[bit / 8] &= (byte) ~(0x80 >>> (bit % 8));
        }
        return new AddressBlock(address, bits, trimmed);
    }

    /** Whether {@code address} lies in this block (an IPv4 address never matches an IPv6 block, nor the reverse). */
    public boolean contains(InetAddress address) {
        byte[] bytes = address.getAddress();
        if (bytes.length != network.length) {
            return false;
        }
        for (int bit = 0; bit < prefixBits; bit += 8) {
            int mask = bit + 8 <= prefixBits ? 0xFF : 0xFF << (8 - (prefixBits - bit)) & 0xFF;
            if (((bytes[bit / 8] ^ network[bit / 8]) & mask) != 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * The IP address of a ZeroMQ {@code Peer-Address} ({@code 10.0.0.7:41234}, {@code [::1]:41234} or
     * {@code ::1:41234}), or null when it is not a literal address.
     */
    public static InetAddress peerHost(String peerAddress) {
        if (peerAddress == null) {
            return null;
        }
        int colon = peerAddress.lastIndexOf(':');
        String host = colon < 0 ? peerAddress : peerAddress.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        try {
            return InetAddress.getByAddress(literal(host, peerAddress));
        } catch (IllegalArgumentException | UnknownHostException e) {
            return null;
        }
    }

    private static byte[] literal(String host, String text) {
        boolean v4 = IPV4.matcher(host).matches();
        if (v4 && java.util.Arrays.stream(host.split("\\.")).anyMatch(octet -> Integer.parseInt(octet) > 255)
                || !v4 && !IPV6.matcher(host).matches()) {
            throw new IllegalArgumentException("'" + text + "' is not an IP address or CIDR block (names are not"
                    + " resolved)");
        }
        try {
            // Checked above to be a literal, so this parses it and never asks DNS.
            return InetAddress.getByName(host).getAddress();
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("'" + text + "' is not an IP address or CIDR block", e);
        }
    }

    @Override
    public String toString() {
        return text;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof AddressBlock block && block.prefixBits == prefixBits
                && java.util.Arrays.equals(block.network, network);
    }

    @Override
    public int hashCode() {
        return java.util.Arrays.hashCode(network) * 31 + prefixBits;
    }
}
