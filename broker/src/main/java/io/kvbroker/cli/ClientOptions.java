package io.kvbroker.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.grpc.StatusRuntimeException;
import io.kvbroker.client.KvIndexClient;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Option;

/** The options every command that talks to a running broker shares: where it is, how long to wait, what to print. */
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

    KvIndexClient client() {
        return KvIndexClient.builder(addresses).deadline(Duration.ofMillis(deadlineMs)).maxAttempts(
                Math.max(3, addresses.size())).build();
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
