package io.kvbroker.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvbroker.testing.Ports;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The real daemon process: starts on embedded defaults, answers the command line's queries over gRPC, stops cleanly
 * on SIGTERM, refuses bad configuration.
 */
@Tag("slow")
class ServeProcessTest {

    /** A kvbroker process whose merged output is collected line by line. */
    private static final class Daemon implements AutoCloseable {
        final Process process;
        final List<String> lines = new ArrayList<>();
        final CompletableFuture<Void> reader;

        Daemon(String... args) throws IOException {
            process = launch(true, args);
            reader = CompletableFuture.runAsync(() -> {
                try (BufferedReader in = new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = in.readLine()) != null) {
                        synchronized (lines) {
                            lines.add(line);
                            lines.notifyAll();
                        }
                    }
                } catch (IOException ignored) {
                    // The process ended.
                }
            });
        }

        /** Waits until a line containing {@code text} was printed; false after the timeout. */
        boolean awaitLine(String text, long seconds) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            synchronized (lines) {
                while (lines.stream().noneMatch(l -> l.contains(text))) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        return false;
                    }
                    lines.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                }
                return true;
            }
        }

        /** Sends SIGTERM (through the handle: Process.destroy() would also close our end of the pipe). */
        int terminate() throws Exception {
            assertThat(process.toHandle().destroy()).isTrue();
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("exited after SIGTERM").isTrue();
            reader.get(10, TimeUnit.SECONDS);
            return process.exitValue();
        }

        String output() {
            synchronized (lines) {
                return String.join("\n", lines);
            }
        }

        @Override
        public void close() {
            process.destroyForcibly();
        }
    }

    private static Process launch(boolean mergeStderr, String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(KvbrokerCommand.class.getName());
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().keySet().removeIf(name -> name.startsWith("KVBROKER_"));
        // The embedded default journal folder is relative to the working directory: a fresh one per process.
        builder.directory(Files.createTempDirectory("kvbroker-serve").toFile());
        builder.redirectErrorStream(mergeStderr);
        return builder.start();
    }

    @Test
    void servesOnEmbeddedDefaultsAndStopsCleanlyOnSigterm() throws Exception {
        // The metrics port is the only default moved: 9464 may be taken on a shared machine.
        try (Daemon daemon = new Daemon("serve", "--set", "shutdown.drainTimeoutMs=2000", "--set", "grpc.port=0",
                "--set", "metrics.port=" + Ports.freeRange(1),
                "--set", "engines.static=[{pod: vllm-0, model: m, endpoint: 'tcp://127.0.0.1:5557'}]")) {
            assertThat(daemon.awaitLine("started in", 60)).as("daemon logged its start").isTrue();
            assertThat(daemon.terminate()).as(daemon.output()).isZero();
            assertThat(daemon.output()).contains("engine vllm-0/0 id=0", "kvbroker stopping", "kvbroker stopped");
        }
    }

    @Test
    void serveWithSimulatedEnginesAnswersTheCommandLineOverGrpc() throws Exception {
        int basePort = Ports.freeRange(6);
        int metricsPort = Ports.freeRange(1);
        try (Daemon daemon = new Daemon("serve", "--simulate", "3", "--set", "simulate.basePort=" + basePort,
                "--set", "log.statusIntervalMs=300", "--set", "metrics.port=" + metricsPort, "--set", "grpc.port=0")) {
            assertThat(daemon.awaitLine("engines 3 (3 live)", 60)).as(daemon.output()).isTrue();
            java.net.http.HttpResponse<String> ready = java.net.http.HttpClient.newHttpClient().send(
                    java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + metricsPort
                            + "/-/ready")).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(ready.statusCode()).as("the probe the StatefulSet uses").isEqualTo(200);
            assertThat(daemon.awaitLine("sample Score over gRPC", 60)).as(daemon.output()).isTrue();
            Matcher listening = Pattern.compile("gRPC API listening on [^:]+:(\\d+)").matcher(daemon.output());
            assertThat(listening.find()).isTrue();
            String address = "127.0.0.1:" + listening.group(1);

            Result engines = run("engines", "--address", address);
            assertThat(engines.exitCode()).as(engines.stderr()).isZero();
            assertThat(engines.stdout()).contains("sim-0/0", "sim-1/0", "sim-2/0", "live");

            Result score = run("score", "--address", "127.0.0.1:1," + address, "--model", "sim/llama-8b",
                    "--sample-prompt", "--output", "json");
            assertThat(score.exitCode()).as(score.stderr()).isZero();
            JsonNode answer = new ObjectMapper().readTree(score.stdout());
            assertThat(answer.get("granularity").asInt()).isEqualTo(16);
            assertThat(answer.get("scored_chunks").asInt()).isPositive();
            assertThat(answer.get("engines")).as("the llama engines hold the shared prompt").isNotEmpty();
            assertThat(answer.get("engines").get(0).get("engine").asText()).startsWith("sim-");

            // Engine 2 serves sim/llama-8b (engine 1 serves sim/qwen-7b: a Hint naming llama for it is refused).
            Result hint = run("hint", "--address", address, "--engine", "2", "--model", "sim/llama-8b",
                    "--sample-prompt", "--ttl-ms", "60000");
            assertThat(hint.exitCode()).as(hint.stderr()).isZero();
            assertThat(hint.stdout()).contains("pending on engine 2");

            Result bad = run("score", "--address", address, "--tokens", "1,2,3");
            assertThat(bad.exitCode()).isEqualTo(1);
            assertThat(bad.stderr()).contains("INVALID_ARGUMENT: model: required");
            Result typo = run("score", "--address", address, "--model", "sim/llama-8", "--tokens", "1,2,3");
            assertThat(typo.exitCode()).isEqualTo(1);
            assertThat(typo.stderr()).contains("NOT_FOUND: model: no engine serves 'sim/llama-8'; served: '");
            assertThat(daemon.terminate()).as(daemon.output()).isZero();
        }
    }

    /**
     * With {@code log.format: json} every line the daemon prints is one JSON object, gRPC's own records included (it
     * logs through java.util.logging, which alone would print two plain lines on standard error): here the warning
     * an over-limit request makes the transport log.
     */
    @Test
    void jsonLogsStayJsonWithGrpcsOwnWarnings() throws Exception {
        try (Daemon daemon = new Daemon("serve", "--set", "log.format=json", "--set", "grpc.port=0",
                "--set", "metrics.port=0", "--set", "grpc.maxTokensPerQuery=100", "--set", "grpc.maxMessageBytes=2048",
                "--set", "engines.static=[{pod: vllm-0, model: m, endpoint: 'tcp://127.0.0.1:5557'}]")) {
            assertThat(daemon.awaitLine("started in", 60)).as(daemon.output()).isTrue();
            Matcher listening = Pattern.compile("gRPC API listening on [^:]+:(\\d+)").matcher(daemon.output());
            assertThat(listening.find()).as(daemon.output()).isTrue();
            String tokens = String.join(",", java.util.Collections.nCopies(1_000, "123456"));
            Result tooLarge = run("score", "--address", "127.0.0.1:" + listening.group(1), "--model", "m",
                    "--tokens", tokens);
            assertThat(tooLarge.stderr()).contains("RESOURCE_EXHAUSTED");
            assertThat(daemon.awaitLine("io.grpc", 30)).as("gRPC's warning logged: " + daemon.output()).isTrue();
            assertThat(daemon.terminate()).as(daemon.output()).isZero();
            ObjectMapper json = new ObjectMapper();
            List<String> lines;
            synchronized (daemon.lines) {
                lines = new ArrayList<>(daemon.lines);
            }
            for (String line : lines) {
                assertThat(json.readTree(line).isObject()).as(line).isTrue();
            }
            assertThat(lines).anySatisfy(line -> assertThat(json.readTree(line).path("loggerName").asText())
                    .startsWith("io.grpc"));
        }
    }

    /**
     * The operator points a second broker at a running broker's journal with {@code journal.startFresh=true}: it is
     * refused, naming the holder and the safe step, and deletes nothing.
     */
    @Test
    void aSecondBrokerWithStartFreshIsRefusedAndLeavesTheRunningBrokersJournalAlone() throws Exception {
        Path journal = Files.createTempDirectory("kvbroker-journal").resolve("journal");
        String[] common = {"serve", "--set", "grpc.port=0", "--set", "metrics.port=0", "--set",
            "journal.dir=" + journal, "--set", "engines.static=[{pod: vllm-0, model: m, endpoint: 'tcp://127.0.0.1:5557'}]"};
        try (Daemon running = new Daemon(common)) {
            assertThat(running.awaitLine("started in", 60)).as(running.output()).isTrue();
            List<String> args = new ArrayList<>(List.of(common));
            args.addAll(List.of("--set", "journal.startFresh=true"));
            String output;
            try (Daemon second = new Daemon(args.toArray(String[]::new))) {
                // Before the fix it deleted the folder and started beside the first: it must stop on its own.
                assertThat(second.process.waitFor(60, TimeUnit.SECONDS)).as(second.output()).isTrue();
                second.reader.get(10, TimeUnit.SECONDS);
                assertThat(second.process.exitValue()).as(second.output()).isNotZero();
                output = second.output();
            }
            assertThat(output).contains("another kvbroker (process " + running.process.pid() + ") holds journal.dir "
                    + journal + ": stop it, or point this one at another directory");
            assertThat(output).doesNotContain("deleting the journal");
            assertThat(journal.resolve("CURRENT")).as("the running broker's journal is still there").exists();
            assertThat(running.terminate()).as(running.output()).isZero();
        }
    }

    /** A finished command's exit code and output. */
    private record Result(int exitCode, String stdout, String stderr) {
    }

    /** Runs a command-line client call with a deadline long enough for a cold JVM on a busy machine. */
    private static Result run(String... args) throws Exception {
        List<String> withDeadline = new ArrayList<>(List.of(args));
        withDeadline.addAll(List.of("--deadline-ms", "30000"));
        Process process = launch(false, withDeadline.toArray(String[]::new));
        CompletableFuture<String> stderr = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return e.toString();
            }
        });
        String stdout = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return new Result(process.exitValue(), stdout, stderr.get(10, TimeUnit.SECONDS));
    }

    @Test
    void badConfigurationStopsStartUpNamingTheKey() throws Exception {
        Process process = launch(false, "serve", "--set", "log.level=loud");
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.exitValue()).isEqualTo(2);
        assertThat(stderr).contains("log.level: must be one of error, warn, info, debug, trace, was 'loud'");
    }

    @Test
    void badDiscoverySettingStopsStartUpNamingTheKey() throws Exception {
        Process process = launch(false, "serve", "--set", "discovery.dns.services=[{host: vllm, model: m, port: 5557,"
                + " replayPort: 5558, dataParallelSize: 2}]");
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.exitValue()).isEqualTo(2);
        assertThat(stderr).contains("discovery.dns.services[0].replayPort: replay ports 5558..5559 overlap");
    }
}
