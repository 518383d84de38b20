package io.kvbroker.grpc;

import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;
import io.grpc.util.CertificateUtils;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Date;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The API's TLS: the server's certificate and key, and for mutual TLS the CAs a client's certificate must chain to,
 * each replaceable while the server runs.
 *
 * <p>Design note: gRPC's {@link AdvancedTlsX509KeyManager} and {@link AdvancedTlsX509TrustManager} are consulted on
 * every handshake, so new material applies to new connections without rebuilding the server or its SslContext, and
 * open connections keep the session they have. The files are read here rather than by their own file loaders so that
 * a key that does not match its certificate (a half-finished rotation) is refused and the old pair kept.
 */
final class ServerTls {
    private static final Logger LOG = LoggerFactory.getLogger(ServerTls.class);

    private final ApiSecurity security;
    private final AdvancedTlsX509KeyManager keyManager = new AdvancedTlsX509KeyManager();
    private final AdvancedTlsX509TrustManager trustManager;
    private final FileWatch identity;
    private final FileWatch clientCa;

    ServerTls(ApiSecurity security) throws CertificateException {
        this.security = security;
        this.identity = new FileWatch("grpc.tls.certFile and grpc.tls.keyFile",
                List.of(security.certFile(), security.keyFile()), this::loadIdentity);
        if (security.mutualTls()) {
            // A client certificate names a workload, not a host: there is no host name to check it against.
            trustManager = AdvancedTlsX509TrustManager.newBuilder()
                    .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_ONLY_VERIFICATION).build();
            clientCa = new FileWatch("grpc.tls.clientCaFile", List.of(security.clientCaFile()), this::loadClientCa);
        } else {
            trustManager = null;
            clientCa = null;
        }
    }

    /** Reads the files; a failure names the setting. */
    void load() {
        identity.loadNow();
        if (clientCa != null) {
            clientCa.loadNow();
        }
    }

    /** Reloads whatever changed; called on the reload timer. */
    void check() {
        identity.check();
        if (clientCa != null) {
            clientCa.check();
        }
    }

    ServerCredentials credentials() {
        TlsServerCredentials.Builder builder = TlsServerCredentials.newBuilder().keyManager(keyManager);
        if (trustManager != null) {
            builder.trustManager(trustManager).clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
        }
        return builder.build();
    }

    private void loadIdentity() throws IOException, GeneralSecurityException {
        X509Certificate[] chain = certificates(security.certFile());
        PrivateKey key;
        try (InputStream in = Files.newInputStream(security.keyFile())) {
            key = CertificateUtils.getPrivateKey(in);
        } catch (RuntimeException e) {
            // CertificateUtils fails on a file that is not a PKCS#8 PEM key with an unchecked exception.
            throw new GeneralSecurityException(security.keyFile() + " holds no PEM (PKCS#8) private key", e);
        }
        checkPair(key, chain[0]);
        Date now = new Date();
        if (chain[0].getNotAfter().before(now)) {
            LOG.warn("the gRPC server certificate {} expired on {}", security.certFile(), chain[0].getNotAfter());
        }
        keyManager.updateIdentityCredentials(chain, key);
        LOG.info("gRPC TLS certificate: {} (valid until {})", chain[0].getSubjectX500Principal(),
                chain[0].getNotAfter());
    }

    private void loadClientCa() throws IOException, GeneralSecurityException {
        trustManager.updateTrustCredentials(certificates(security.clientCaFile()));
    }

    private static X509Certificate[] certificates(Path file) throws IOException, CertificateException {
        X509Certificate[] certificates;
        try (InputStream in = Files.newInputStream(file)) {
            certificates = CertificateUtils.getX509Certificates(in);
        }
        if (certificates.length == 0) {
            throw new CertificateException(file + " holds no PEM certificate");
        }
        return certificates;
    }

    /** Fails unless {@code key} is the private key of {@code certificate}: it signs, the certificate verifies. */
    private static void checkPair(PrivateKey key, X509Certificate certificate) throws GeneralSecurityException {
        String algorithm = switch (key.getAlgorithm()) {
            case "RSA" -> "SHA256withRSA";
            case "EC" -> "SHA256withECDSA";
            case "Ed25519", "EdDSA" -> "Ed25519";
            default -> null;
        };
        if (algorithm == null) {
            return;
        }
        byte[] probe = new byte[32];
        new SecureRandom().nextBytes(probe);
        Signature signer = Signature.getInstance(algorithm);
        signer.initSign(key);
        signer.update(probe);
        byte[] signature = signer.sign();
        Signature verifier = Signature.getInstance(algorithm);
        verifier.initVerify(certificate.getPublicKey());
        verifier.update(probe);
        if (!verifier.verify(signature)) {
            throw new GeneralSecurityException("the private key does not belong to the certificate "
                    + certificate.getSubjectX500Principal());
        }
    }
}
