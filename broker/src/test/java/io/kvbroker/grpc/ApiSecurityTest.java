package io.kvbroker.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.kvbroker.client.KvIndexClient;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.QueryLimits;
import io.kvbroker.testing.Await;
import io.kvbroker.testing.TestCertificates.Issued;
import io.kvbroker.testing.TestCertificates;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Access control of the query API against a real server on an ephemeral port, with CAs and certificates issued in
 * the test: TLS, mutual TLS, bearer tokens, and certificates and tokens replaced while the server runs.
 */
class ApiSecurityTest {
    @TempDir
    Path dir;

    private final List<GrpcServer> servers = new ArrayList<>();
    private Issued ca;
    private Path caFile;
    private Path certFile;
    private Path keyFile;

    @BeforeEach
    void issueServerCertificate() throws Exception {
        ca = TestCertificates.ca("kvbroker test CA");
        caFile = ca.writeCertificate(dir.resolve("ca.pem"));
        certFile = dir.resolve("server.pem");
        keyFile = dir.resolve("server.key");
        TestCertificates.leaf(ca, "kvbroker").write(certFile, keyFile);
    }

    @AfterEach
    void stop() throws Exception {
        for (GrpcServer server : servers) {
            server.stop(Duration.ofSeconds(2));
        }
    }

    private GrpcServer server(ApiSecurity security) throws Exception {
        EngineRegistry registry = new EngineRegistry();
        BlockIndex index = new BlockIndex(id -> "m", 16, PrefixScorer.Weights.DEFAULT);
        Readiness readiness = new Readiness();
        readiness.set(true);
        GrpcServer server = new GrpcServer("127.0.0.1", 0, 1 << 20, new IndexQueries(index, registry, id -> null,
                new PendingHints(System::currentTimeMillis, 10), System::currentTimeMillis),
                new QueryLimits(1_000, 10, 10, 1_000, 1_000), readiness, null, security.withReloadIntervalMs(50),
                null);
        server.start();
        servers.add(server);
        return server;
    }

    private static ApiSecurity tls(Path cert, Path key) {
        return ApiSecurity.PLAINTEXT.withTls(cert, key);
    }

    /** One ListEngines call over a fresh channel: a new connection, so a new handshake. */
    private static int listEngines(GrpcServer server, ChannelCredentials credentials, String token) {
        KvIndexClient.Builder builder = KvIndexClient.builder(List.of("127.0.0.1:" + server.port()))
                .deadline(Duration.ofSeconds(5)).maxAttempts(1).credentials(credentials);
        if (token != null) {
            builder.bearerToken(token);
        }
        try (KvIndexClient client = builder.build()) {
            return client.listEngines().getGranularity();
        }
    }

    /** OK, or the status code the call failed with. */
    private static Status.Code outcome(GrpcServer server, ChannelCredentials credentials, String token) {
        try {
            listEngines(server, credentials, token);
            return Status.Code.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode();
        }
    }

    private static ChannelCredentials trusting(Path ca) throws Exception {
        return TlsChannelCredentials.newBuilder().trustManager(ca.toFile()).build();
    }

    private static ChannelCredentials trusting(Path ca, Path cert, Path key) throws Exception {
        return TlsChannelCredentials.newBuilder().trustManager(ca.toFile()).keyManager(cert.toFile(), key.toFile())
                .build();
    }

    @Test
    @Tag("slow")
    void tlsServerServesClientsThatTrustItsCaAndRefusesPlainTextAndOtherCas() throws Exception {
        GrpcServer server = server(tls(certFile, keyFile));
        assertThat(listEngines(server, trusting(caFile), null)).isEqualTo(16);
        assertThat(outcome(server, InsecureChannelCredentials.create(), null)).isEqualTo(Status.Code.UNAVAILABLE);
        Path otherCa = TestCertificates.ca("another CA").writeCertificate(dir.resolve("other-ca.pem"));
        assertThat(outcome(server, trusting(otherCa), null)).isEqualTo(Status.Code.UNAVAILABLE);
    }

    /**
     * Handshake faults an operator meets: a server certificate that expired, a client certificate that expired
     * (mutual TLS), and bytes that are not TLS sent to the TLS port (a plain-text HTTP/2 preface, then garbage). Each
     * is refused on its own connection; the server goes on serving a client that does everything right.
     */
    @Test
    void expiredCertificatesAndBytesThatAreNotTlsAreRefusedAndTheServerServesOn() throws Exception {
        Instant now = Instant.now();
        Path expiredCert = dir.resolve("expired.pem");
        Path expiredKey = dir.resolve("expired.key");
        TestCertificates.leaf(ca, "kvbroker", now.minus(Duration.ofDays(2)), now.minus(Duration.ofDays(1)))
                .write(expiredCert, expiredKey);
        GrpcServer expired = server(tls(expiredCert, expiredKey));
        assertThat(outcome(expired, trusting(caFile), null)).as("a server certificate that expired")
                .isEqualTo(Status.Code.UNAVAILABLE);

        Issued clientCa = TestCertificates.ca("client CA");
        GrpcServer server = server(tls(certFile, keyFile).withClientCa(
                clientCa.writeCertificate(dir.resolve("client-ca.pem"))));
        Path clientCert = dir.resolve("gateway.pem");
        Path clientKey = dir.resolve("gateway.key");
        TestCertificates.leaf(clientCa, "gateway").write(clientCert, clientKey);
        Path oldCert = dir.resolve("old-gateway.pem");
        Path oldKey = dir.resolve("old-gateway.key");
        TestCertificates.leaf(clientCa, "gateway", now.minus(Duration.ofDays(2)), now.minus(Duration.ofDays(1)))
                .write(oldCert, oldKey);
        assertThat(outcome(server, trusting(caFile, oldCert, oldKey), null)).as("a client certificate that expired")
                .isEqualTo(Status.Code.UNAVAILABLE);

        try (Socket raw = new Socket("127.0.0.1", server.port())) {
            raw.setSoTimeout(20_000);
            OutputStream out = raw.getOutputStream();
            out.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.write(new byte[4096]);
            out.flush();
            InputStream in = raw.getInputStream();
            int answered = 0;
            try {
                while (in.read() >= 0) {
                    answered++;
                }
            } catch (SocketException reset) {
                // Closed with a reset rather than a FIN: refused all the same.
            }
            assertThat(answered).as("bytes the server sent back before closing (a TLS alert at most)")
                    .isLessThan(64);
        }
        assertThat(listEngines(server, trusting(caFile, clientCert, clientKey), null)).as("served on").isEqualTo(16);
    }

    @Test
    void mutualTlsLetsInOnlyClientsWithACertificateFromTheClientCa() throws Exception {
        Issued clientCa = TestCertificates.ca("client CA");
        Path clientCaFile = clientCa.writeCertificate(dir.resolve("client-ca.pem"));
        GrpcServer server = server(tls(certFile, keyFile).withClientCa(clientCaFile));
        Path clientCert = dir.resolve("gateway.pem");
        Path clientKey = dir.resolve("gateway.key");
        TestCertificates.leaf(clientCa, "gateway").write(clientCert, clientKey);
        Path strangerCert = dir.resolve("stranger.pem");
        Path strangerKey = dir.resolve("stranger.key");
        // Signed by the server's CA, which the server does not take for clients.
        TestCertificates.leaf(ca, "stranger").write(strangerCert, strangerKey);

        assertThat(listEngines(server, trusting(caFile, clientCert, clientKey), null)).isEqualTo(16);
        assertThat(outcome(server, trusting(caFile), null)).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(outcome(server, trusting(caFile, strangerCert, strangerKey), null))
                .isEqualTo(Status.Code.UNAVAILABLE);
    }

    @Test
    void bearerTokenMissingOrWrongIsUnauthenticatedRightIsServedAndHealthStaysOpen() throws Exception {
        Path tokens = Files.writeString(dir.resolve("tokens"), "# gateways\nfirst-token\n\n second-token \n");
        GrpcServer server = server(tls(certFile, keyFile).withTokens(tokens));
        ChannelCredentials credentials = trusting(caFile);

        assertThatThrownBy(() -> listEngines(server, credentials, null)).isInstanceOfSatisfying(
                StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
                    assertThat(e.getStatus().getDescription()).contains("missing bearer token");
                });
        assertThatThrownBy(() -> listEngines(server, credentials, "first-tokenX")).isInstanceOfSatisfying(
                StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
                    assertThat(e.getStatus().getDescription()).isEqualTo("unknown bearer token");
                });
        assertThat(listEngines(server, credentials, "first-token")).isEqualTo(16);
        assertThat(listEngines(server, credentials, "second-token")).isEqualTo(16);

        ManagedChannel channel = Grpc.newChannelBuilder("127.0.0.1:" + server.port(), credentials).build();
        try {
            assertThat(HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance())
                    .getStatus()).isEqualTo(ServingStatus.SERVING);
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void tokensFileIsReadAgainWhenItChanges() throws Exception {
        Path tokens = Files.writeString(dir.resolve("tokens"), "old-token\n");
        GrpcServer server = server(ApiSecurity.PLAINTEXT.withTokens(tokens));
        ChannelCredentials plain = InsecureChannelCredentials.create();
        assertThat(listEngines(server, plain, "old-token")).isEqualTo(16);

        Path next = Files.writeString(dir.resolve("tokens.next"), "new-token\n");
        Files.move(next, tokens, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        Await.until("the new token accepted", Duration.ofSeconds(30),
                () -> outcome(server, plain, "old-token") == Status.Code.UNAUTHENTICATED);
        assertThat(listEngines(server, plain, "new-token")).isEqualTo(16);
    }

    @Test
    void replacedCertificateFilesServeNewConnectionsWithoutRestart() throws Exception {
        GrpcServer server = server(tls(certFile, keyFile));
        Issued nextCa = TestCertificates.ca("next CA");
        Path nextCaFile = nextCa.writeCertificate(dir.resolve("next-ca.pem"));
        assertThat(outcome(server, trusting(nextCaFile), null)).isEqualTo(Status.Code.UNAVAILABLE);
        int port = server.port();

        TestCertificates.leaf(nextCa, "kvbroker rotated").write(certFile, keyFile);
        Await.until("a new connection gets the certificate of the next CA", Duration.ofSeconds(30), () -> {
            try {
                return listEngines(server, trusting(nextCaFile), null) == 16;
            } catch (StatusRuntimeException e) {
                return false;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        assertThat(server.port()).isEqualTo(port);
        assertThat(outcome(server, trusting(caFile), null)).isEqualTo(Status.Code.UNAVAILABLE);
    }

    @Test
    void aKeyThatDoesNotMatchItsCertificateStopsStartUpNamingTheSettings() throws Exception {
        Path otherKey = dir.resolve("other.key");
        TestCertificates.leaf(ca, "other").write(dir.resolve("other.pem"), otherKey);
        assertThatThrownBy(() -> server(tls(certFile, otherKey))).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("grpc.tls.certFile and grpc.tls.keyFile")
                .hasMessageContaining("does not belong to the certificate");
        Path notPem = Files.writeString(dir.resolve("not.pem"), "not a certificate");
        assertThatThrownBy(() -> server(tls(notPem, keyFile))).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("grpc.tls.certFile and grpc.tls.keyFile");
    }
}
