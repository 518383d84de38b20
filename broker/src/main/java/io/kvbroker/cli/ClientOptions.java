package io.kvbroker.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.kvbroker.client.KvIndexClient;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The options every command that talks to a running broker shares: where it is, how to get in (TLS, a client
 * certificate, a bearer token), how long to wait, what to print.
 */
final class ClientOptions {
    /** Output formats. */
    enum Output { table, json }

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @Option(names = {"-a", "--address"}, paramLabel = "HOST:PORT", split = ",",
            description = "Broker replica(s) to ask, tried in order on UNAVAILABLE; repeatable or comma-separated "
                    + "(default: ${DEFAULT-VALUE}).", defaultValue = "127.0.0.1:50051")
    List<String> addresses = new ArrayList<>();

    @Option(names = {"-o", "--output"}, paramLabel = "FORMAT", defaultValue = "table",
            description = "table or json (default: ${DEFAULT-VALUE}).")
    Output output;

    @Option(names = "--deadline-ms", paramLabel = "MS", defaultValue = "10000",
            description = "Deadline of the call, retries included (default: ${DEFAULT-VALUE}).")
    long deadlineMs;

    @Option(names = "--tls", description = "Use TLS, trusting the JDK's CAs (implied by --tls-ca and --tls-cert).")
    boolean tls;

    @Option(names = "--tls-ca", paramLabel = "FILE",
            description = "PEM CA certificate(s) the broker's certificate must chain to; implies --tls.")
    Path tlsCa;

    @Option(names = "--tls-cert", paramLabel = "FILE",
            description = "PEM client certificate for a broker that asks for one (grpc.tls.clientCaFile); needs"
                    + " --tls-key.")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "PEM (PKCS#8) private key of --tls-cert.")
    Path tlsKey;

    @Option(names = "--token-file", paramLabel = "FILE",
            description = "File whose first line (not blank, not '#') is the bearer token to send"
                    + " (grpc.auth.tokensFile).")
    Path tokenFile;

    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    KvIndexClient client() {
        KvIndexClient.Builder builder = KvIndexClient.builder(addresses).deadline(Duration.ofMillis(deadlineMs))
                .maxAttempts(Math.max(3, addresses.size())).credentials(channelCredentials());
        bearerToken().ifPresent(builder::bearerToken);
        return builder.build();
    }

    /** Plain text, or TLS from the --tls flags; a bad flag is a usage error naming it. */
    ChannelCredentials channelCredentials() {
        if ((tlsCert == null) != (tlsKey == null)) {
            throw new ParameterException(spec.commandLine(), tlsCert == null ? "--tls-key needs --tls-cert"
                    : "--tls-cert needs --tls-key");
        }
        if (!tls && tlsCa == null && tlsCert == null) {
            return InsecureChannelCredentials.create();
        }
        TlsChannelCredentials.Builder builder = TlsChannelCredentials.newBuilder();
        String flag = "--tls-ca";
        try {
            if (tlsCa != null) {
                builder.trustManager(tlsCa.toFile());
            }
            flag = "--tls-cert/--tls-key";
            if (tlsCert != null) {
                builder.keyManager(tlsCert.toFile(), tlsKey.toFile());
            }
        } catch (IOException | RuntimeException e) {
            throw new ParameterException(spec.commandLine(), flag + ": " + e.getMessage());
        }
        return builder.build();
    }

    /** The token of --token-file, if given. */
    Optional<String> bearerToken() {
        if (tokenFile == null) {
            return Optional.empty();
        }
        try {
            return Optional.of(Files.readAllLines(tokenFile).stream().map(String::strip)
                    .filter(line -> !line.isEmpty() && !line.startsWith("#")).findFirst()
                    .orElseThrow(() -> new IOException("holds no token")));
        } catch (IOException e) {
            throw new ParameterException(spec.commandLine(), "--token-file " + tokenFile + ": " + e.getMessage());
        }
    }

    boolean json() {
        return output == Output.json;
    }

    /**
     * Runs a call and maps a gRPC failure to exit status 1 with its status on standard error (a bad request: the
     * message names the field).
     */
    static Integer run(Callable<Integer> call) throws Exception {
        try {
            return call.call();
        } catch (StatusRuntimeException e) {
            PrintStream err = System.err;
            err.println("kvbroker: " + e.getStatus().getCode() + (e.getStatus().getDescription() == null ? ""
                    : ": " + e.getStatus().getDescription()));
            return 1;
        }
    }
}
