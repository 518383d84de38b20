package io.kvbroker.cli;

import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.kvbroker.client.KvIndexWatcher;
import io.kvbroker.client.WatchListener;
import io.kvbroker.client.WatchPositions;
import io.kvbroker.client.WatchStateListener;
import io.kvbroker.proto.v1.EngineBatch;
import io.kvbroker.proto.v1.EngineSnapshot;
import io.kvbroker.proto.v1.WatchResponse;
import io.kvbroker.proto.v1.WatchStarted;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** Follows a running broker's Watch stream and prints it, one line per engine event, snapshot part or batch. */
@Command(name = "watch", mixinStandardHelpOptions = true,
        description = "Follow a running broker's index changes (Watch): engines added and removed, snapshots, batches."
                + " On exit the resume token is printed to standard error as 'token: ...'.")
final class WatchCommand implements Callable<Integer> {
    @Mixin
    ClientOptions client;

    @Option(names = "--json", description = "One JSON object per line (the same as -o json).")
    boolean json;

    @Option(names = "--token", paramLabel = "TOKEN", defaultValue = "",
            description = "Resume from this token (base64url, as printed on exit); default: start with snapshots.")
    String token;

    @Option(names = "--models", paramLabel = "MODEL", split = ",", description = "Watch only these models.")
    List<String> models = new ArrayList<>();

    @Option(names = "--engines", paramLabel = "POD/RANK", split = ",", description = "Watch only these engines.")
    List<String> engines = new ArrayList<>();

    @Option(names = "--count", paramLabel = "N", defaultValue = "0",
            description = "Stop after N batches (whole messages; 0: no limit).")
    long count;

    @Option(names = "--duration", paramLabel = "SECONDS", defaultValue = "0",
            description = "Stop after this many seconds (0: no limit).")
    double durationSeconds;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        byte[] resume;
        try {
            resume = WatchPositions.fromBase64(token).token();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--token: " + e.getMessage());
        }
        CountDownLatch done = new CountDownLatch(1);
        Printer printer = new Printer(json || client.json(), System.out, count, done);
        KvIndexWatcher.Builder builder = KvIndexWatcher.builder(client.addresses, printer)
                .credentials(client.channelCredentials()).token(resume).models(models)
                .engines(engines).stateListener(new WatchStateListener() {
                    @Override
                    public void disconnected(String address, Status status) {
                        System.err.println("kvbroker: stream to " + address + " ended: " + status.getCode()
                                + (status.getDescription() == null ? "" : ": " + status.getDescription()));
                    }

                    @Override
                    public void stopped(Throwable failure) {
                        done.countDown();
                    }
                });
        client.bearerToken().ifPresent(builder::bearerToken);
        KvIndexWatcher watcher = builder.build();
        CountDownLatch finished = new CountDownLatch(1);
        // Ctrl-C ends the watch the way --count does, so the token is still printed.
        Thread hook = new Thread(() -> {
            done.countDown();
            awaitQuietly(finished, Duration.ofSeconds(5));
        }, "kvbroker-watch-exit");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return ClientOptions.run(() -> {
                watcher.start();
                if (durationSeconds > 0) {
                    done.await((long) (durationSeconds * 1e9), TimeUnit.NANOSECONDS);
                } else {
                    done.await();
                }
                watcher.close();
                System.out.flush();
                System.err.println("token: " + watcher.positions().tokenBase64());
                Throwable failure = watcher.failure();
                if (failure instanceof StatusRuntimeException e) {
                    throw e;
                }
                if (failure != null) {
                    System.err.println("kvbroker: " + failure.getMessage());
                    return 1;
                }
                return 0;
            });
        } finally {
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // Already shutting down: the hook is what woke us.
            }
        }
    }

    private static void awaitQuietly(CountDownLatch latch, Duration timeout) {
        try {
            latch.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Prints each message as it arrives (on the watcher's thread) and ends the watch after enough batches. */
    static final class Printer implements WatchListener {
        private static final String LINE = "%-8s %-24s %12s %10s  %s%n";
        private static final ObjectWriter LINES = ClientOptions.JSON.writer()
                .without(SerializationFeature.INDENT_OUTPUT);
        private final boolean json;
        private final PrintStream out;
        private final long maxBatches;
        private final CountDownLatch done;
        private final Map<Integer, String> names = new HashMap<>();
        private long batches;
        private boolean headerPrinted;

        Printer(boolean json, PrintStream out, long maxBatches, CountDownLatch done) {
            this.json = json;
            this.out = out;
            this.maxBatches = maxBatches;
            this.done = done;
        }

        @Override
        public void onMessage(WatchResponse message) {
            try {
                switch (message.getEventCase()) {
                    case STARTED -> started(message.getStarted());
                    case ENGINE_ADDED -> {
                        var e = message.getEngineAdded();
                        names.put(e.getEngineId(), e.getName());
                        print(node("engine_added", e.getEngineId()).put("model", e.getModel()), e.getEngineId(),
                                "", "", "model " + e.getModel());
                    }
                    case SNAPSHOT -> snapshot(message.getSnapshot());
                    case CHANGES -> {
                        for (EngineBatch batch : message.getChanges().getBatchesList()) {
                            batch(batch);
                        }
                    }
                    case ENGINE_REMOVED -> {
                        int id = message.getEngineRemoved().getEngineId();
                        print(node("engine_removed", id), id, "", "", "");
                        names.remove(id);
                    }
                    case CAUGHT_UP -> {
                        long at = message.getCaughtUp().getBrokerSequence();
                        if (json) {
                            out.println(LINES.writeValueAsString(ClientOptions.JSON.createObjectNode()
                                    .put("event", "caught_up").put("broker_sequence", at)));
                        } else {
                            out.printf(Locale.ROOT, LINE, "caught_up", "", at, "", "backlog sent; live from here");
                        }
                    }
                    default -> {
                    }
                }
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
            out.flush();
            if (maxBatches > 0 && batches >= maxBatches) {
                done.countDown();
            }
        }

        private void started(WatchStarted s) throws com.fasterxml.jackson.core.JsonProcessingException {
            if (json) {
                out.println(LINES.writeValueAsString(ClientOptions.JSON.createObjectNode().put("event", "started")
                        .put("broker_id", s.getBrokerId()).put("broker_sequence", s.getBrokerSequence())
                        .put("granularity", s.getGranularity()).put("whole_snapshot", s.getWholeSnapshot())
                        .put("engines_resumed", s.getEnginesResumed()).put("engines_current", s.getEnginesCurrent())
                        .put("engines_snapshotted", s.getEnginesSnapshotted())));
                return;
            }
            if (!headerPrinted) {
                out.printf(Locale.ROOT, LINE, "EVENT", "ENGINE", "BROKER SEQ", "SEQUENCE", "DETAIL");
                headerPrinted = true;
            }
            out.printf(Locale.ROOT, LINE, "started", "broker " + s.getBrokerId(), s.getBrokerSequence(), "",
                    String.format(Locale.ROOT, "granularity %d, %s%d resumed, %d current, %d snapshotted",
                            s.getGranularity(), s.getWholeSnapshot() ? "whole snapshot, " : "",
                            s.getEnginesResumed(), s.getEnginesCurrent(), s.getEnginesSnapshotted()));
        }

        private void snapshot(EngineSnapshot s) throws com.fasterxml.jackson.core.JsonProcessingException {
            print(node("snapshot", s.getEngineId()).put("part", s.getPart()).put("last_part", s.getLastPart())
                            .put("incarnation", s.getIncarnation()).put("sequence", s.getSequence())
                            .put("broker_sequence", s.getBrokerSequence()).put("holdings", s.getKeysCount()),
                    s.getEngineId(), s.getBrokerSequence(), s.getSequence(),
                    String.format(Locale.ROOT, "part %d%s, %d holdings", s.getPart(),
                            s.getLastPart() ? " (last)" : "", s.getKeysCount()));
        }

        private void batch(EngineBatch b) throws com.fasterxml.jackson.core.JsonProcessingException {
            batches++;
            print(node("batch", b.getEngineId()).put("broker_sequence", b.getBrokerSequence())
                            .put("incarnation", b.getIncarnation()).put("sequence", b.getSequence())
                            .put("cleared", b.getCleared()).put("holdings", b.getKeysCount())
                            .put("stored_blocks", b.getStoredBlocks()).put("removed_blocks", b.getRemovedBlocks())
                            .put("evicted_blocks", b.getEvictedBlocks())
                            .put("engine_time_micros", b.getEngineTimeMicros()),
                    b.getEngineId(), b.getBrokerSequence(), b.getSequence(),
                    String.format(Locale.ROOT, "%s%d holdings changed: %d stored, %d removed, %d evicted",
                            b.getCleared() ? "cleared, " : "", b.getKeysCount(), b.getStoredBlocks(),
                            b.getRemovedBlocks(), b.getEvictedBlocks()));
        }

        private ObjectNode node(String event, int engineId) {
            return ClientOptions.JSON.createObjectNode().put("event", event).put("engine_id", engineId)
                    .put("engine", names.getOrDefault(engineId, ""));
        }

        private void print(ObjectNode node, int engineId, Object brokerSequence, Object sequence, String detail)
                throws com.fasterxml.jackson.core.JsonProcessingException {
            if (json) {
                out.println(LINES.writeValueAsString(node));
            } else {
                out.printf(Locale.ROOT, LINE, eventName(node), names.getOrDefault(engineId, "?") + " (" + engineId
                        + ")", brokerSequence, sequence, detail);
            }
        }

        private static String eventName(ObjectNode node) {
            return switch (node.get("event").asText()) {
                case "engine_added" -> "added";
                case "engine_removed" -> "removed";
                default -> node.get("event").asText();
            };
        }
    }
}
