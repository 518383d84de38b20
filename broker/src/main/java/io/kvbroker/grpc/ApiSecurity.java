package io.kvbroker.grpc;

import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;
import java.nio.file.Path;

/**
 * How the query API lets clients in: plain text or TLS, client certificates checked against a CA (mutual TLS), bearer
 * tokens, and how often their files are checked for changes.
 *
 * @param certFile the server's PEM certificate chain; null: plain text
 * @param keyFile the PEM (PKCS#8) private key of {@code certFile}
 * @param clientCaFile PEM CA certificates that must have signed a client's certificate; null: none asked for
 * @param tokensFile bearer tokens, one a line; null: no token check
 * @param reloadIntervalMs how often the files are checked for changes
 */
public record ApiSecurity(Path certFile, Path keyFile, Path clientCaFile, Path tokensFile, long reloadIntervalMs) {
    /** The embedded default: anyone who reaches the port may call. */
    public static final ApiSecurity PLAINTEXT = new ApiSecurity(null, null, null, null, 60_000);

    public ApiSecurity {
        if ((certFile == null) != (keyFile == null)) {
            throw new IllegalArgumentException("TLS needs both a certificate and a key file");
        }
        if (clientCaFile != null && certFile == null) {
            throw new IllegalArgumentException("a client CA needs TLS");
        }
        if (reloadIntervalMs <= 0) {
            throw new IllegalArgumentException("reloadIntervalMs must be positive, was " + reloadIntervalMs);
        }
    }

    public static ApiSecurity from(BrokerConfig config) {
        return new ApiSecurity(path(config.get(Settings.GRPC_TLS_CERT_FILE)),
                path(config.get(Settings.GRPC_TLS_KEY_FILE)), path(config.get(Settings.GRPC_TLS_CLIENT_CA_FILE)),
                path(config.get(Settings.GRPC_AUTH_TOKENS_FILE)), config.get(Settings.GRPC_TLS_RELOAD_INTERVAL_MS));
    }

    private static Path path(String value) {
        return value.isEmpty() ? null : Path.of(value);
    }

    /** TLS with this certificate and key. */
    public ApiSecurity withTls(Path cert, Path key) {
        return new ApiSecurity(cert, key, clientCaFile, tokensFile, reloadIntervalMs);
    }

    /** Mutual TLS: clients need a certificate signed by one of these CAs. */
    public ApiSecurity withClientCa(Path caFile) {
        return new ApiSecurity(certFile, keyFile, caFile, tokensFile, reloadIntervalMs);
    }

    public ApiSecurity withTokens(Path file) {
        return new ApiSecurity(certFile, keyFile, clientCaFile, file, reloadIntervalMs);
    }

    public ApiSecurity withReloadIntervalMs(long value) {
        return new ApiSecurity(certFile, keyFile, clientCaFile, tokensFile, value);
    }

    public boolean tls() {
        return certFile != null;
    }

    public boolean mutualTls() {
        return clientCaFile != null;
    }

    public boolean tokens() {
        return tokensFile != null;
    }
}
