package io.kvbroker.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.cli.KvbrokerCommand;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code kvbroker serve} in a JVM of its own, on this JVM's class path, its output in a log file: for process tests
 * that stop it with SIGTERM, kill it with SIGKILL and start it again on the same journal.
 */
public final class BrokerProcess implements AutoCloseable {
    private final Process process;
    private final Path log;

    private BrokerProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /**
     * Starts {@code kvbroker serve ARGS} with {@code -Xmx512m}, no KVBROKER_ environment, output to {@code log}. The
     * JIT stops at C1: on a busy 2-core machine that halves the time to start (3.4 s against 6 s, and 4.4 s against
     * 11 s at a load of 10), and these tests are of behaviour, not speed.
     */
    public static BrokerProcess serve(Path log, String... args) throws IOException {
        return serve(log, List.of(), args);
    }

    /**
     * As {@link #serve(Path, String...)} with {@code jvmOptions} after the defaults, so that one of them (such as a
     * smaller {@code -Xmx}) wins over a default.
     */
    public static BrokerProcess serve(Path log, List<String> jvmOptions, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xmx512m", "-XX:TieredStopAtLevel=1"));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), KvbrokerCommand.class.getName(),
                "serve"));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().keySet().removeIf(name -> name.startsWith("KVBROKER_"));
        builder.redirectErrorStream(true);
        builder.redirectOutput(log.toFile());
        return new BrokerProcess(builder.start(), log);
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Sends SIGTERM and waits for the exit; returns the exit code. */
    public int terminate() throws Exception {
        assertThat(process.toHandle().destroy()).isTrue();
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("exited after SIGTERM; %s", tail()).isTrue();
        return process.exitValue();
    }

    /** Sends SIGKILL and waits until the process is gone. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("gone after SIGKILL").isTrue();
    }

    /** The end of the broker's output, for failure messages. */
    public String tail() throws IOException {
        String text = Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
        return text.substring(Math.max(0, text.length() - 4_000));
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            kill();
        }
    }
}
