package io.kvbroker.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.testing.Ports;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The real daemon process: starts on embedded defaults, stops cleanly on SIGTERM, refuses bad configuration. */
class ServeProcessTest {

    private static Process launch(String... args) throws IOException {
        return launch(false, args);
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
        builder.redirectErrorStream(mergeStderr);
        return builder.start();
    }

    @Test
    void servesOnEmbeddedDefaultsAndStopsCleanlyOnSigterm() throws Exception {
        Process process = launch(true, "serve", "--set", "shutdown.drainTimeoutMs=2000",
                "--set", "engines.static=[{pod: vllm-0, model: m, endpoint: 'tcp://127.0.0.1:5557'}]");
        CountDownLatch started = new CountDownLatch(1);
        StringBuilder output = new StringBuilder();
        CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
            try (BufferedReader lines = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = lines.readLine()) != null) {
                    synchronized (output) {
                        output.append(line).append('\n');
                    }
                    if (line.contains("started in")) {
                        started.countDown();
                    }
                }
            } catch (IOException ignored) {
                // The process ended.
            }
        });
        try {
            assertThat(started.await(60, TimeUnit.SECONDS)).as("daemon logged its start").isTrue();
            // SIGTERM through the handle: Process.destroy() would also close our end of the output pipe.
            assertThat(process.toHandle().destroy()).isTrue();
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("daemon exited after SIGTERM").isTrue();
            reader.get(10, TimeUnit.SECONDS);
            assertThat(process.exitValue()).as(output.toString()).isZero();
            synchronized (output) {
                assertThat(output).contains("engine vllm-0/0 id=0", "kvbroker stopping", "kvbroker stopped");
            }
        } finally {
            process.destroyForcibly();
        }
    }

    @Test
    void serveWithSimulatedEnginesReportsThemLive() throws Exception {
        int basePort = Ports.freeRange(6);
        Process process = launch(true, "serve", "--simulate", "3", "--set", "simulate.basePort=" + basePort,
                "--set", "log.statusIntervalMs=300");
        CountDownLatch live = new CountDownLatch(1);
        StringBuilder output = new StringBuilder();
        CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
            try (BufferedReader lines = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = lines.readLine()) != null) {
                    synchronized (output) {
                        output.append(line).append('\n');
                    }
                    if (line.contains("engines 3 (3 live)")) {
                        live.countDown();
                    }
                }
            } catch (IOException ignored) {
                // The process ended.
            }
        });
        try {
            assertThat(live.await(60, TimeUnit.SECONDS)).as("status line with 3 live engines: %s", output).isTrue();
            assertThat(process.toHandle().destroy()).isTrue();
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
            reader.get(10, TimeUnit.SECONDS);
            assertThat(process.exitValue()).as(output.toString()).isZero();
        } finally {
            process.destroyForcibly();
        }
    }

    @Test
    void badConfigurationStopsStartUpNamingTheKey() throws Exception {
        Process process = launch("serve", "--set", "log.level=loud");
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.exitValue()).isEqualTo(2);
        assertThat(stderr).contains("log.level: must be one of error, warn, info, debug, trace, was 'loud'");
    }
}
