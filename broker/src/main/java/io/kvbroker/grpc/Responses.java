package io.kvbroker.grpc;

import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.core.PrefixScore;
import io.kvbroker.index.BlockIndex.EngineSummary;
import io.kvbroker.index.BlockIndex.Holder;
import io.kvbroker.ingest.EngineCounters.Counter;
import io.kvbroker.ingest.EngineCounters;
import io.kvbroker.proto.v1.EngineInfo;
import io.kvbroker.proto.v1.EngineState;
import io.kvbroker.proto.v1.HintResponse;
import io.kvbroker.proto.v1.ListEnginesResponse;
import io.kvbroker.proto.v1.LookupResponse;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.query.EngineReport;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.ScoreAnswer;
import java.util.List;

/** Turns the domain's answers into the API's messages. */
final class Responses {
    private Responses() {
    }

    static ScoreResponse score(ScoreAnswer answer, int granularity) {
        ScoreResponse.Builder response = ScoreResponse.newBuilder().setGranularity(granularity)
                .setScoredChunks(answer.scoredChunks());
        for (ScoreAnswer.Row row : answer.rows()) {
            PrefixScore score = row.score();
            response.addEngineIds(score.engineId()).addGpuBlocks(score.gpuBlocks())
                    .addOffloadBlocks(score.offloadBlocks()).addGpuTokens(score.gpuTokens())
                    .addOffloadTokens(score.offloadTokens()).addScores(score.score())
                    .addStates(state(row.state(), row.truncated())).addAppliedSequences(row.appliedSequence())
                    .addLagBatches(row.lagBatches());
        }
        for (ScoreAnswer.Pending pending : answer.pending()) {
            response.addPendingEngineIds(pending.engineId()).addPendingBlocks(pending.blocks())
                    .addPendingTokens(pending.blocks() * granularity);
        }
        return response.build();
    }

    static LookupResponse lookup(List<List<Holder>> holders) {
        LookupResponse.Builder response = LookupResponse.newBuilder();
        for (List<Holder> ofKey : holders) {
            response.addHolderCounts(ofKey.size());
            for (Holder holder : ofKey) {
                response.addEngineIds(holder.engineId()).addMedia(holder.media());
            }
        }
        return response.build();
    }

    static ListEnginesResponse engines(List<EngineReport> reports, int granularity) {
        ListEnginesResponse.Builder response = ListEnginesResponse.newBuilder().setGranularity(granularity);
        for (EngineReport report : reports) {
            EngineSummary summary = report.summary();
            EngineCounters counters = report.counters();
            EngineInfo.Builder info = EngineInfo.newBuilder().setEngineId(report.engineId())
                    .setPod(report.spec().key().pod()).setRank(report.spec().key().rank())
                    .setModel(report.spec().model()).setEndpoint(report.spec().endpoint().toString())
                    .setState(state(report.state(), report.truncated())).setIncarnation(summary.incarnation())
                    .setAppliedSequence(summary.appliedSequence()).setLastHeardSequence(report.lastHeardSequence())
                    .setLagBatches(report.lagBatches()).setMsSinceLastHeard(report.msSinceLastHeard())
                    .setBlocks(summary.blocks()).setGpuBlocks(summary.gpuBlocks()).setCpuBlocks(summary.cpuBlocks())
                    .setStorageBlocks(summary.storageBlocks()).setOtherBlocks(summary.otherBlocks())
                    .setGaps(counters.get(Counter.GAPS)).setReplays(counters.get(Counter.REPLAYS_REQUESTED))
                    .setVoids(counters.get(Counter.VOIDS)).setDecodeErrors(counters.get(Counter.DECODE_ERRORS))
                    .setRestarts(counters.get(Counter.RESTARTS_BY_SEQUENCE)
                            + counters.get(Counter.RESTARTS_BY_FINGERPRINT))
                    .setBatches(counters.get(Counter.BATCHES)).setBlockEvents(counters.get(Counter.BLOCK_EVENTS))
                    .setTopic(report.spec().topic()).setTopicSeen(nullToEmpty(report.topicSeen()))
                    .setTopicMismatches(counters.get(Counter.TOPIC_MISMATCHES))
                    .setReplayEndpoint(report.spec().replayEndpoint().map(Object::toString).orElse(""))
                    .setHistoryPartial(report.historyPartial())
                    .setUnknownHistoryBatches(counters.get(Counter.UNKNOWN_HISTORY_BATCHES))
                    .setConnections(counters.get(Counter.CONNECTIONS));
            for (MalformedMessageException.Reason reason : MalformedMessageException.Reason.values()) {
                long count = counters.decodeErrors(reason);
                if (count > 0) {
                    info.putDecodeErrorsByReason(reason.label(), count);
                }
            }
            response.addEngines(info);
        }
        return response.build();
    }

    static HintResponse hint(PendingHints.Recorded recorded, long ttlMs) {
        return HintResponse.newBuilder().setRecordedBlocks(recorded.recordedBlocks())
                .setEnginePendingBlocks(recorded.enginePendingBlocks()).setTtlMs((int) ttlMs).build();
    }

    private static String nullToEmpty(String text) {
        return text == null ? "" : text;
    }

    /** The API's state: the stream's, except that an engine the index truncated says so while it is applied live. */
    static EngineState state(io.kvbroker.ingest.EngineState state, boolean truncated) {
        if (truncated && state == io.kvbroker.ingest.EngineState.LIVE) {
            return EngineState.ENGINE_STATE_TRUNCATED;
        }
        return switch (state) {
            case CONNECTING -> EngineState.ENGINE_STATE_CONNECTING;
            case CONNECTED -> EngineState.ENGINE_STATE_CONNECTED;
            case CATCHING_UP -> EngineState.ENGINE_STATE_CATCHING_UP;
            case LIVE -> EngineState.ENGINE_STATE_LIVE;
            case SILENT -> EngineState.ENGINE_STATE_SILENT;
            case VOID -> EngineState.ENGINE_STATE_VOID;
            case REMOVED -> EngineState.ENGINE_STATE_REMOVED;
        };
    }
}
