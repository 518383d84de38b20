package io.kvbroker.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;

/**
 * The report's first section: every target of the project next to the figure that answers it, read from the suites'
 * results files ({@code bench/results/*.json}), with the floor where the suite measured one and by how much a missed
 * target is missed. Usage: {@code BenchSummary [--out DIR]} (run last by {@code scripts/bench}).
 */
public final class BenchSummary {
    private static final ObjectMapper JSON = new ObjectMapper();

    private BenchSummary() {
    }

    /** One target's row. */
    private record Row(String figure, String value, String target, String verdict, String floor, String from) {
    }

    public static void main(String[] args) throws Exception {
        Path out = BenchReport.outDir(args);
        List<Row> rows = new ArrayList<>();
        JsonNode ingest = read(out, "ingest");
        JsonNode journal = read(out, "journal");
        JsonNode index = read(out, "index");
        JsonNode grpc = read(out, "grpc");
        JsonNode watch = read(out, "watch");

        // The 100-engine probe of the full run, or the largest fleet a quick run measured.
        JsonNode persisted = list(ingest, "ingest").stream()
                .filter(n -> n.path("side").asText().equals("ingest+index+journal"))
                .max(java.util.Comparator.comparingInt(n -> n.path("engines").asInt())).orElse(null);
        JsonNode floor = persisted == null ? null : find(ingest, "ingest", n -> n.path("side").asText()
                .equals("floor") && n.path("engines").asInt() == persisted.path("engines").asInt());
        rows.add(atLeast("persisted ingest over ZeroMQ (" + (persisted == null ? "?" : persisted.path("engines")
                .asInt()) + " engines), block events/s", persisted == null ? null : persisted.path("blockEventsPerSec"),
                1_000_000, floor == null ? "" : ratio(persisted.path("blockEventsPerSec").asDouble(),
                        floor.path("blockEventsPerSec").asDouble(), "bare SUB loop"), ingest));
        JsonNode applyJournal = find(journal, "journal", n -> n.path("figure").asText().equals("persistedInterval"));
        JsonNode raw = find(journal, "journal", n -> n.path("figure").asText().equals("rawRocksDb"));
        rows.add(atLeast("persisted apply (index + journal, no network), block events/s", applyJournal == null ? null
                : applyJournal.path("blockEventsPerSec"), 1_000_000, raw == null || applyJournal == null ? ""
                : ratio(applyJournal.path("blockEventsPerSec").asDouble(), raw.path("blockEventsPerSec").asDouble(),
                        "raw RocksDB WriteBatches"), journal));
        JsonNode oneWatcher = find(watch, "watch", n -> n.path("watchers").asInt() == 1);
        rows.add(atMost("freshness to Score (publish → applied, readable by Score), p99 ms", oneWatcher == null ? null
                : oneWatcher.path("appliedP99ms"), 5, "", watch));
        for (JsonNode row : list(watch, "watch")) {
            rows.add(atMost("freshness to Watch, " + row.path("watchers").asInt() + " watcher(s), p99 ms",
                    row.path("lagP99ms"), 10, ratio(row.path("lagP99ms").asDouble(), row.path("appliedP99ms")
                            .asDouble(), "publish → applied"), watch));
        }
        JsonNode score = find(grpc, "grpc", n -> n.path("call").asText().startsWith("Score, token ids")
                && n.path("offeredPerSec").asInt() == 10_000);
        JsonNode empty = find(grpc, "grpc", n -> n.path("call").asText().startsWith("empty unary")
                && n.path("offeredPerSec").asInt() == 10_000);
        String emptyCall = empty == null ? "" : String.format(Locale.ROOT, "empty unary call p99 %.2f ms",
                empty.path("p99us").asDouble() / 1_000);
        String scoreFigure = "Score over gRPC at 10,000 req/s while ingest runs, p99 ms";
        if (score != null && score.path("answered").asLong() == 0) {
            rows.add(new Row(scoreFigure, "no call answered (" + score.path("errors").asLong() + " failed)",
                    "<= 1.00", "missed", emptyCall, command(grpc)));
        } else {
            rows.add(atMost(scoreFigure, score == null ? null : JSON.valueToTree(score.path("p99us").asDouble()
                    / 1_000), 1, emptyCall, grpc));
        }
        for (JsonNode row : list(index, "index")) {
            if (row.path("figure").asText().equals("memory")) {
                rows.add(atMost(String.format(Locale.ROOT, "memory at %,d residencies, heap bytes per residency",
                        row.path("residencies").asLong()), row.path("heapBytesPerResidency"), 64, "", index));
            }
        }
        JsonNode recovery = find(journal, "journal", n -> n.path("figure").asText().equals("recovery"));
        rows.add(atMost(String.format(Locale.ROOT, "restart to SERVING with %,d residencies, s", recovery == null ? 0
                : recovery.path("residencies").asLong()), recovery == null ? null : recovery.path("seconds"), 10, "",
                journal));

        StringBuilder md = new StringBuilder("Every target of the project beside the figure that answers it, read from"
                + " `bench/results/*.json` by `scripts/bench` after its suites ran (each row names the command that"
                + " wrote its figure; sections below have the details and the machines).\n\n"
                + "| figure | value | target | verdict | beside | from |\n|---|---|---|---|---|---|\n");
        for (Row row : rows) {
            md.append("| ").append(row.figure()).append(" | ").append(row.value()).append(" | ").append(row.target())
                    .append(" | ").append(row.verdict()).append(" | ").append(row.floor()).append(" | ")
                    .append(row.from()).append(" |\n");
        }
        System.out.print(md);
        BenchReport.writeSection(out, "Summary", md.toString());
    }

    private static Row atLeast(String figure, JsonNode value, double target, String floor, JsonNode from) {
        return verdict(figure, value, ">= " + format(target), value != null && value.asDouble() >= target,
                value == null ? 0 : value.asDouble() / target, floor, from);
    }

    private static Row atMost(String figure, JsonNode value, double target, String floor, JsonNode from) {
        return verdict(figure, value, "<= " + format(target), value != null && value.asDouble() <= target,
                value == null ? 0 : value.asDouble() / target, floor, from);
    }

    private static Row verdict(String figure, JsonNode value, String target, boolean met, double ofTarget,
            String floor, JsonNode from) {
        if (value == null || value.isMissingNode()) {
            return new Row(figure, "not measured", target, "—", floor, command(from));
        }
        String verdict = met ? "met" : String.format(Locale.ROOT, "missed (%.2f× the target)", ofTarget);
        return new Row(figure, format(value.asDouble()), target, verdict, floor, command(from));
    }

    private static String ratio(double value, double floor, String what) {
        return floor <= 0 ? "" : String.format(Locale.ROOT, "%.2f× %s (%s)", value / floor, what, format(floor));
    }

    private static String format(double value) {
        return value >= 100 ? String.format(Locale.ROOT, "%,.0f", value) : String.format(Locale.ROOT, "%.2f", value);
    }

    private static String command(JsonNode results) {
        return results == null ? "not run" : "`" + results.path("command").asText() + "`";
    }

    private static JsonNode read(Path out, String suite) throws java.io.IOException {
        Path file = out.resolve("bench/results/" + suite + ".json");
        return Files.exists(file) ? JSON.readTree(file.toFile()) : null;
    }

    private static List<JsonNode> list(JsonNode results, String suite) {
        List<JsonNode> rows = new ArrayList<>();
        if (results != null) {
            results.path(suite).forEach(rows::add);
        }
        return rows;
    }

    private static JsonNode find(JsonNode results, String suite, Predicate<JsonNode> test) {
        return list(results, suite).stream().filter(test).findFirst().orElse(null);
    }
}
