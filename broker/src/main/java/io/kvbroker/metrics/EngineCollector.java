package io.kvbroker.metrics;

import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.ingest.EngineCounters;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineCounters.Mark;
import io.kvbroker.ingest.EngineState;
import io.kvbroker.ingest.EngineStream;
import io.kvbroker.ingest.ZmqIngest;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import java.util.function.LongSupplier;

/**
 * Per-engine series ({@code kvbroker_engine_*}, labelled by engine and model) read at scrape time from the counters
 * ingest keeps anyway and from the index's per-engine summary.
 *
 * <p>Design note: nothing is counted for metrics on the ingest thread; a scrape reads each engine's counters (plain
 * ordered stores by their one writer) and takes the index's read lock once per engine. Removed engines have no
 * series, so churn does not grow the scrape. Decode errors appear per reason once that reason has happened, which
 * keeps thirteen mostly-zero series per engine out of the scrape; their total is a family of its own, so summing a
 * family never counts twice.
 */
final class EngineCollector implements MultiCollector {
    private static final String P = "kvbroker_engine_";

    private final ZmqIngest ingest;
    private final EngineRegistry registry;
    private final BlockIndex index;
    private final LongSupplier clock;

    EngineCollector(ZmqIngest ingest, EngineRegistry registry, BlockIndex index, LongSupplier clock) {
        this.ingest = ingest;
        this.registry = registry;
        this.index = index;
        this.clock = clock;
    }

    @Override
    public MetricSnapshots collect() {
        Families f = new Families();
        long now = clock.getAsLong();
        for (EngineStream stream : ingest.streams()) {
            EngineState state = stream.state();
            if (state == EngineState.REMOVED) {
                continue;
            }
            EngineSpec spec = registry.entry(stream.engineId()).spec();
            Labels labels = Labels.of("engine", spec.key().toString(), "model", spec.model());
            EngineCounters c = stream.counters();
            f.counter(P + "batches", "Batches applied (live and replayed).", labels, c.get(Counter.BATCHES));
            f.counter(P + "block_events", "Block events (stored, removed, cleared) in applied batches.", labels,
                    c.get(Counter.BLOCK_EVENTS));
            f.counter(P + "received_bytes", "Payload bytes of applied batches.", labels, c.get(Counter.BYTES));
            f.counter(P + "gaps", "Missing sequences seen in the live stream.", labels, c.get(Counter.GAPS));
            f.counter(P + "replays", "Replay requests sent to the engine.", labels,
                    c.get(Counter.REPLAYS_REQUESTED));
            f.counter(P + "replay_timeouts", "Replays that went quiet before their end marker.", labels,
                    c.get(Counter.REPLAY_TIMEOUTS));
            f.counter(P + "replayed_batches", "Batches applied from replay.", labels,
                    c.get(Counter.REPLAYED_BATCHES));
            f.counter(P + "voids", "Times the engine's state was cleared after a gap replay could not fill.", labels,
                    c.get(Counter.VOIDS));
            f.counter(P + "lost_batches", "Batches published but never received (voided or before first contact).",
                    labels, c.get(Counter.UNKNOWN_HISTORY_BATCHES));
            f.counter(P + "duplicate_batches", "Batches received twice (live and replay) and applied once.", labels,
                    c.get(Counter.DUPLICATES));
            f.counter(P + "skipped_events", "Events of unknown type skipped.", labels,
                    c.get(Counter.SKIPPED_EVENTS));
            f.counter(P + "pending_overflows", "Live batches dropped while a replay ran (replayed later).", labels,
                    c.get(Counter.PENDING_OVERFLOWS));
            f.counter(P + "restarts", "Engine restarts detected, by how.", labels.add("reason", "sequence"),
                    c.get(Counter.RESTARTS_BY_SEQUENCE));
            f.counter(P + "restarts", "", labels.add("reason", "fingerprint"),
                    c.get(Counter.RESTARTS_BY_FINGERPRINT));
            f.counter(P + "restarts", "", labels.add("reason", "discovery"), c.get(Counter.RESTARTS_SIGNALLED));
            f.counter(P + "topic_mismatches", "Live messages dropped because their topic was not the engine's"
                    + " configured one.", labels, c.get(Counter.TOPIC_MISMATCHES));
            f.counter(P + "connections", "Connections made to the engine's PUB (more than one: reconnects).", labels,
                    c.get(Counter.CONNECTIONS));
            f.counter(P + "disconnects", "Connections to the engine's PUB or replay socket dropped or lost: the engine"
                    + " went away, or sent a frame over ingest.maxMessageBytes (ZeroMQ drops the connection).",
                    labels, c.get(Counter.DISCONNECTIONS));
            f.counter(P + "protocol_drops", "Connections ZeroMQ closed because the engine broke the protocol, most"
                    + " often with a frame over ingest.maxMessageBytes (the message is lost; kvbroker connects again).",
                    labels, c.get(Counter.PROTOCOL_DROPS));
            f.gauge(P + "history_partial", "1 while the index may hold less of the engine's current incarnation than"
                    + " it caches (batches published where kvbroker could not hear them, not replayable), else 0.",
                    labels, stream.historyPartial() ? 1 : 0);
            f.counter(P + "decode_errors", "Malformed messages or batches skipped.", labels,
                    c.get(Counter.DECODE_ERRORS));
            for (MalformedMessageException.Reason reason : MalformedMessageException.Reason.values()) {
                long count = c.decodeErrors(reason);
                if (count > 0) {
                    f.counter(P + "decode_errors_by_reason", "Malformed messages or batches skipped, by reason"
                            + " (a reason appears once it has happened).", labels.add("reason", reason.label()),
                            count);
                }
            }
            for (EngineState each : EngineState.values()) {
                if (each != EngineState.REMOVED) {
                    f.gauge(P + "state", "1 for the engine's current ingest state, 0 for the others.",
                            labels.add("state", each.label()), each == state ? 1 : 0);
                }
            }
            long heard = c.get(Mark.LAST_HEARD_MS);
            if (heard > 0) {
                f.gauge(P + "last_message_timestamp_seconds", "When the engine was last heard from (Unix time).",
                        labels, heard / 1000.0);
            }
            long stamped = c.get(Mark.LAST_APPLIED_BATCH_TS_MS);
            if (stamped > 0) {
                f.gauge(P + "lag_seconds", "Now minus the engine's own timestamp of the last applied batch (includes"
                        + " clock skew between hosts).", labels, Math.max(0, now - stamped) / 1000.0);
            }
            f.gauge(P + "applied_sequence", "The engine's sequence number of the last applied batch (-1: none).",
                    labels, stream.cursor());
            f.gauge(P + "incarnation", "Restarts seen plus one.", labels, stream.incarnation());
            BlockIndex.EngineSummary summary = index.engineSummary(stream.engineId());
            f.gauge(P + "blocks", "Blocks the engine holds in the index, by medium.", labels.add("medium", "gpu"),
                    summary.gpuBlocks());
            f.gauge(P + "blocks", "", labels.add("medium", "cpu"), summary.cpuBlocks());
            f.gauge(P + "blocks", "", labels.add("medium", "storage"), summary.storageBlocks());
            f.gauge(P + "blocks", "", labels.add("medium", "other"), summary.otherBlocks());
            f.gauge(P + "evicted_blocks", "Blocks the engine holds that the index dropped for its quota.", labels,
                    summary.evictedBlocks());
            f.gauge(P + "truncated", "1 while the index holds less of the engine than it caches (evictions for its"
                    + " quota since its last clear), else 0.", labels, summary.truncated() ? 1 : 0);
        }
        f.counter("kvbroker_ingest_refused_messages", "Listen mode: messages refused, by why.",
                Labels.of("reason", "empty_topic"), ingest.refusedEmptyTopic());
        f.counter("kvbroker_ingest_refused_messages", "", Labels.of("reason", "shared_topic"),
                ingest.refusedSharedTopicMessages());
        f.counter("kvbroker_ingest_refused_messages", "", Labels.of("reason", "malformed"),
                ingest.refusedMalformed());
        f.counter("kvbroker_ingest_refused_topics", "Listen mode: (topic, rank) pairs refused because two engines"
                + " interleaved their sequences under them.", Labels.EMPTY, ingest.refusedSharedTopic());
        f.counter("kvbroker_ingest_publisher_disconnects", "Listen mode: publisher connections dropped or lost (a"
                + " frame over ingest.maxMessageBytes drops its connection).", Labels.EMPTY,
                ingest.publisherDisconnects());
        f.counter("kvbroker_ingest_refused_messages", "", Labels.of("reason", "unknown_topic"),
                ingest.refusedUnknownTopic());
        f.counter("kvbroker_ingest_refused_messages", "", Labels.of("reason", "unknown_address"),
                ingest.refusedUnknownAddress());
        return f.build();
    }
}
