package io.kvbroker.client;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import java.util.concurrent.Executor;

/**
 * Call credentials that add {@code authorization: Bearer TOKEN} to every call, for a broker that checks
 * {@code grpc.auth.tokensFile}.
 *
 * <p>Design note: the token is sent whatever the channel's security, so that a broker behind a mesh that encrypts
 * for it can check tokens too; over a plain-text channel anyone on the path can read it, so use TLS otherwise.
 */
public final class BearerToken extends CallCredentials {
    private static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);

    private final String token;

    /** @param token the token, without "Bearer " */
    public BearerToken(String token) {
        String value = token.strip();
        if (value.isEmpty() || value.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
            throw new IllegalArgumentException("a bearer token must be printable ASCII without spaces");
        }
        this.token = value;
    }

    @Override
    public void applyRequestMetadata(RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + token);
        applier.apply(headers);
    }

    @Override
    public String toString() {
        // Never the token itself: this may end up in a log line.
        return "BearerToken[***]";
    }
}
