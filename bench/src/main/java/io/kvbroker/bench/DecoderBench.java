package io.kvbroker.bench;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs {@link DecoderBenchmark} and writes its figures, each next to its floor, to {@code BENCHMARKS.md} and
 * {@code bench/results/decoder.json}. Usage: {@code DecoderBench [--quick] [--out DIR]}.
 */
public final class DecoderBench {
    private DecoderBench() {
    }

    /** One payload set's figures. */
    record Figures(String set, int payloads, long bytesPerPass, long blockEventsPerPass, double decodePassesPerSec,
            double decodeError, double skipPassesPerSec) {
        double decodeMbPerSec() {
            return decodePassesPerSec * bytesPerPass / 1e6;
        }

        double skipMbPerSec() {
            return skipPassesPerSec * bytesPerPass / 1e6;
        }

        double blockEventsPerSec() {
            return decodePassesPerSec * blockEventsPerPass;
        }

        double ratioToFloor() {
            return decodePassesPerSec / skipPassesPerSec;
        }
    }

    public static void main(String[] args) throws Exception {
        boolean quick = List.of(args).contains("--quick");
        Path out = BenchReport.outDir(args);
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(DecoderBenchmark.class.getName())
                .forks(1)
                .threads(1)
                .warmupIterations(quick ? 1 : 3)
                .warmupTime(TimeValue.seconds(1))
                .measurementIterations(quick ? 2 : 5)
                .measurementTime(TimeValue.seconds(1))
                .timeUnit(TimeUnit.SECONDS)
                .jvmArgsAppend("-Xms1g", "-Xmx1g");
        Map<String, Double[]> scores = new LinkedHashMap<>();
        for (RunResult result : new Runner(options.build()).run()) {
            String method = result.getParams().getBenchmark();
            method = method.substring(method.lastIndexOf('.') + 1);
            String key = result.getParams().getParam("set") + "/" + method;
            scores.put(key, new Double[] {result.getPrimaryResult().getScore(),
                result.getPrimaryResult().getScoreError()});
        }
        List<Figures> figures = List.of(figures("golden", Payloads.golden(), scores),
                figures("mix", Payloads.realisticMix(2048, 42), scores));
        String command = "scripts/bench decoder" + (quick ? " --quick" : "");
        Files.createDirectories(out.resolve("bench/results"));
        Files.writeString(out.resolve("bench/results/decoder.json"), json(figures, command));
        BenchReport.writeSection(out, "Decoder", markdown(figures, command, quick));
        for (Figures f : figures) {
            System.out.printf(Locale.ROOT, "%-7s decode %8.1f MB/s %12.0f block events/s | floor (skip) %8.1f MB/s |"
                    + " ratio %.2f%n", f.set(), f.decodeMbPerSec(), f.blockEventsPerSec(), f.skipMbPerSec(),
                    f.ratioToFloor());
        }
    }

    private static Figures figures(String set, List<byte[]> payloads, Map<String, Double[]> scores)
            throws MalformedMessageException {
        KvEventDecoder decoder = new KvEventDecoder();
        long bytes = 0;
        long events = 0;
        for (byte[] payload : payloads) {
            bytes += payload.length;
            events += decoder.decode(payload).blockEventCount();
        }
        Double[] decode = scores.get(set + "/decode");
        Double[] skip = scores.get(set + "/skip");
        return new Figures(set, payloads.size(), bytes, events, decode[0], decode[1], skip[0]);
    }

    private static String markdown(List<Figures> figures, String command, boolean quick) {
        StringBuilder md = new StringBuilder();
        md.append("Written by `").append(command).append("` on ").append(BenchReport.machine()).append(", ")
                .append(BenchReport.jvm()).append(" (heap 1 GiB, one benchmark thread), ").append(BenchReport.now())
                .append(". JMH, 1 fork, ").append(quick ? "1 x 1 s warm-up, 2 x 1 s measured (quick: wide error)"
                        : "3 x 1 s warm-up, 5 x 1 s measured").append(".\n\n");
        md.append("One thread decoding payloads already in memory into event records. The floor is msgpack-core's\n");
        md.append("`skipValue()` over the same bytes: walking the msgpack without building anything.\n\n");
        md.append("| payload set | payloads | bytes | block events | decode MB/s | block events/s | floor (skip) MB/s "
                + "| decode / floor |\n");
        md.append("|---|---|---|---|---|---|---|---|\n");
        for (Figures f : figures) {
            md.append(String.format(Locale.ROOT, "| %s | %d | %d | %d | %.0f ± %.0f | %,.0f | %.0f | %.2f |%n",
                    f.set().equals("golden") ? "captured vLLM vectors (10, both forms)"
                            : "realistic map-form mix (" + f.bytesPerPass() / f.payloads() + " bytes per batch)",
                    f.payloads(), f.bytesPerPass(), f.blockEventsPerPass(), f.decodeMbPerSec(),
                    f.decodeError() * f.bytesPerPass() / 1e6, f.blockEventsPerSec(), f.skipMbPerSec(),
                    f.ratioToFloor()));
        }
        md.append("\nA block event is one stored or removed block hash (a clear counts as one).\n");
        return md.toString();
    }

    private static String json(List<Figures> figures, String command) {
        StringBuilder json = new StringBuilder("{\n  \"command\": \"").append(command).append("\",\n");
        json.append("  \"date\": \"").append(ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME))
                .append("\",\n  \"machine\": \"").append(BenchReport.machine().replace("\"", "'")).append("\",\n");
        json.append("  \"jvm\": \"").append(BenchReport.jvm()).append("\",\n  \"decoder\": [\n");
        for (int i = 0; i < figures.size(); i++) {
            Figures f = figures.get(i);
            json.append(String.format(Locale.ROOT, "    {\"set\": \"%s\", \"payloads\": %d, \"bytes\": %d, "
                    + "\"blockEvents\": %d, \"decodeMBps\": %.1f, \"blockEventsPerSec\": %.0f, \"floorSkipMBps\": %.1f,"
                    + " \"ratioToFloor\": %.3f}%s%n", f.set(), f.payloads(), f.bytesPerPass(), f.blockEventsPerPass(),
                    f.decodeMbPerSec(), f.blockEventsPerSec(), f.skipMbPerSec(), f.ratioToFloor(),
                    i + 1 < figures.size() ? "," : ""));
        }
        json.append("  ]\n}\n");
        return json.toString();
    }
}
