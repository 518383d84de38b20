package io.kvbroker.testing;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/** Reads Prometheus' text exposition as a /metrics scrape returns it: every sample by its series. */
public final class MetricsText {
    private MetricsText() {
    }

    /** Every sample of {@code body}, by series ({@code name{labels}}), in the order given. */
    public static Map<String, Double> parse(String body) {
        Map<String, Double> samples = new LinkedHashMap<>();
        for (String line : body.split("\n")) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            int space = line.lastIndexOf(' ');
            samples.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
        }
        return samples;
    }

    /** The sum of the samples of metric {@code name} whose series {@code series} accepts. */
    public static double sum(Map<String, Double> samples, String name, Predicate<String> series) {
        return samples.entrySet().stream()
                .filter(e -> (e.getKey().equals(name) || e.getKey().startsWith(name + "{")) && series.test(e.getKey()))
                .mapToDouble(Map.Entry::getValue).sum();
    }
}
