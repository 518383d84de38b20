package io.kvbroker.testing;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.management.JMException;
import javax.management.ObjectName;

/**
 * Class histograms of this JVM's live objects, as {@code jcmd PID GC.class_histogram} prints them (the same
 * diagnostic command, after a full GC), and the classes that grew between two of them.
 *
 * <p>Design note: histograms are handled as their text, so a caller can write the first to a file and hold nothing
 * of it while the next is taken (a parsed first histogram would show up as a grower in the second).
 */
public final class ClassHistogram {
    private static final Pattern ROW = Pattern.compile("^\\s*\\d+:\\s+(\\d+)\\s+(\\d+)\\s+(\\S+)");

    private ClassHistogram() {
    }

    /** Instances and bytes of one class, or their growth. */
    public record Row(String className, long instances, long bytes) {
    }

    /** The histogram of this JVM now (a full GC first), as the diagnostic command prints it. */
    public static String take() {
        try {
            return (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcClassHistogram",
                    new Object[] {new String[0]}, new String[] {String[].class.getName()});
        } catch (JMException e) {
            throw new IllegalStateException("no class histogram from this JVM: " + e.getMessage(), e);
        }
    }

    /** The {@code limit} classes whose bytes grew most from {@code earlier} to {@code later}. */
    public static List<Row> grown(String earlier, String later, int limit) {
        Map<String, Row> before = rows(earlier);
        List<Row> grown = new ArrayList<>();
        for (Row now : rows(later).values()) {
            Row then = before.getOrDefault(now.className(), new Row(now.className(), 0, 0));
            grown.add(new Row(now.className(), now.instances() - then.instances(), now.bytes() - then.bytes()));
        }
        grown.sort(Comparator.comparingLong(Row::bytes).reversed());
        return grown.subList(0, Math.min(limit, grown.size()));
    }

    private static Map<String, Row> rows(String histogram) {
        Map<String, Row> rows = new HashMap<>();
        for (String line : histogram.split("\n")) {
            Matcher m = ROW.matcher(line);
            if (m.find()) {
                // A class loaded twice (by two loaders) has two rows: counted as one.
                rows.merge(m.group(3), new Row(m.group(3), Long.parseLong(m.group(1)), Long.parseLong(m.group(2))),
                        (a, b) -> new Row(a.className(), a.instances() + b.instances(), a.bytes() + b.bytes()));
            }
        }
        return rows;
    }
}
