package io.kvbroker.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.List;

/**
 * Writes BENCHMARKS.md one section per suite, so each {@code scripts/bench SUITE} run refreshes its own figures,
 * stamped with the machine, JVM and time, and leaves the others' in place.
 */
final class BenchReport {
    static final String HEADER = "# Benchmarks\n\nEach section is written by the command it names, on the machine it"
            + " names; rerun that command to refresh it.\nFigures are measured, never asserted: tests do not depend on"
            + " them.\n";

    private BenchReport() {
    }

    /** The {@code --out DIR} argument, or the current folder. */
    static Path outDir(String[] args) {
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--out")) {
                return Path.of(args[i + 1]);
            }
        }
        return Path.of(".");
    }

    /** Replaces (or appends) section {@code ## title} of {@code document}. */
    static String replaceSection(String document, String title, String body) {
        String doc = document.startsWith("# Benchmarks") ? document : HEADER;
        if (!doc.contains("Each section is written by")) {
            doc = HEADER;
        }
        String heading = "## " + title + "\n";
        String section = heading + "\n" + body.strip() + "\n";
        int start = doc.indexOf(heading);
        if (start < 0) {
            return doc.strip() + "\n\n" + section;
        }
        int end = doc.indexOf("\n## ", start + heading.length());
        return doc.substring(0, start) + section + (end < 0 ? "" : doc.substring(end));
    }

    static void writeSection(Path out, String title, String body) throws IOException {
        Path file = out.resolve("BENCHMARKS.md");
        String existing = Files.exists(file) ? Files.readString(file) : HEADER;
        Files.writeString(file, replaceSection(existing, title, body));
    }

    /** A results file: the command that wrote it and the suite's entries (JSON objects), one a line. */
    static String json(String command, String suite, List<String> entries) {
        return "{\n  \"command\": \"" + command + "\",\n  \"" + suite + "\": [\n" + String.join(",\n", entries)
                + "\n  ]\n}\n";
    }

    /** Writes a suite's results file, {@code bench/results/SUITE.json} under {@code out}. */
    static void writeJson(Path out, String suite, String command, List<String> entries) throws IOException {
        Files.createDirectories(out.resolve("bench/results"));
        Files.writeString(out.resolve("bench/results/" + suite + ".json"), json(command, suite, entries));
    }

    /** The first words of a section: the command that wrote it, on what machine and JVM, and when. */
    static String writtenBy(String command) {
        return "Written by `" + command + "` on " + machine() + ", " + jvm() + ", " + now();
    }

    static String machine() {
        String cpu = "unknown CPU";
        String memory = "";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).strip()).orElse(cpu);
            memory = Files.readAllLines(Path.of("/proc/meminfo")).stream().filter(l -> l.startsWith("MemTotal"))
                    .findFirst().map(l -> ", " + Long.parseLong(l.replaceAll("\\D", "")) / (1024 * 1024) + " GiB")
                    .orElse("");
        } catch (IOException | RuntimeException e) {
            // Not Linux: the CPU stays unknown.
        }
        return Runtime.getRuntime().availableProcessors() + " cores, " + cpu + memory + ", "
                + System.getProperty("os.name") + " " + System.getProperty("os.version");
    }

    static String jvm() {
        return System.getProperty("java.vm.name") + " " + System.getProperty("java.version");
    }

    /** The machine's 1-minute load average: on a shared machine, how many other threads wanted the cores. */
    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    static String now() {
        return ZonedDateTime.now().truncatedTo(ChronoUnit.SECONDS).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
    }
}
