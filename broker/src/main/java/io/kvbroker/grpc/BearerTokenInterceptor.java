package io.kvbroker.grpc;

import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lets a call through only with {@code authorization: Bearer TOKEN} naming one of the tokens of a file; any other
 * call ends with UNAUTHENTICATED saying what was missing or wrong. The health service stays open.
 *
 * <p>Design note: tokens are kept as SHA-256 digests and a presented token is hashed and compared with every one of
 * them in constant time ({@link MessageDigest#isEqual}), without stopping at a match, so the time a check takes says
 * nothing about how much of a token was right, nor which token it was. Health stays open because Kubernetes gRPC
 * probes and grpc_health_probe send no metadata, and it tells only SERVING or NOT_SERVING; reflection is behind the
 * token like the API.
 */
final class BearerTokenInterceptor implements ServerInterceptor {
    private static final Logger LOG = LoggerFactory.getLogger(BearerTokenInterceptor.class);
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);
    private static final String BEARER = "Bearer ";
    private static final long LOG_EVERY_MS = 60_000;

    private final Path file;
    private volatile List<byte[]> digests = List.of();
    private final AtomicLong refused = new AtomicLong();
    private final AtomicLong loggedAtMs = new AtomicLong(Long.MIN_VALUE);

    BearerTokenInterceptor(Path file) {
        this.file = file;
    }

    /** Reads the tokens: one a line, blank lines and lines starting with '#' skipped; at least one. */
    void load() throws IOException {
        List<byte[]> loaded = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            String token = line.strip();
            if (!token.isEmpty() && !token.startsWith("#")) {
                loaded.add(digest(token));
            }
        }
        if (loaded.isEmpty()) {
            // More likely a file caught half-written than a wish to let nobody in: keep the tokens there were.
            throw new IOException(file + " holds no token");
        }
        digests = List.copyOf(loaded);
    }

    /** Calls refused so far. */
    long refused() {
        return refused.get();
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
            ServerCallHandler<Q, R> next) {
        if (HealthGrpc.SERVICE_NAME.equals(call.getMethodDescriptor().getServiceName())) {
            return next.startCall(call, headers);
        }
        String problem = problem(headers.get(AUTHORIZATION));
        if (problem == null) {
            return next.startCall(call, headers);
        }
        refused.incrementAndGet();
        long now = System.currentTimeMillis();
        long logged = loggedAtMs.get();
        if (now - logged >= LOG_EVERY_MS && loggedAtMs.compareAndSet(logged, now)) {
            LOG.warn("call {} from {} refused: {} ({} refused so far; logged once a minute)",
                    call.getMethodDescriptor().getFullMethodName(),
                    call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR), problem, refused.get());
        }
        call.close(Status.UNAUTHENTICATED.withDescription(problem), new Metadata());
        return new ServerCall.Listener<>() {
        };
    }

    /** What is wrong with an authorization header, or null when it carries a known token. */
    private String problem(String authorization) {
        if (authorization == null) {
            return "missing bearer token: send metadata 'authorization: Bearer TOKEN'";
        }
        if (!authorization.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
            return "the authorization metadata is not 'Bearer TOKEN'";
        }
        byte[] presented = digest(authorization.substring(BEARER.length()).strip());
        boolean known = false;
        for (byte[] digest : digests) {
            known |= MessageDigest.isEqual(digest, presented);
        }
        return known ? null : "unknown bearer token";
    }

    private static byte[] digest(String token) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
