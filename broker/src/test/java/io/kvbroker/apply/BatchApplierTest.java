package io.kvbroker.apply;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.core.PrefixScorer;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.Events;
import io.kvbroker.index.ResolvedBatch;
import io.kvbroker.ingest.IngestSink.ResetReason;
import io.kvbroker.watch.ChangeFeed;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The applier's order (index, then log, then feed) and numbering, with a log that records what it is told. */
class BatchApplierTest {
    private final BlockIndex index = new BlockIndex(id -> "m", 16, PrefixScorer.Weights.DEFAULT);
    private final ChangeFeed feed = new ChangeFeed(64);
    private final RecordingLog log = new RecordingLog();

    /** What the log was told, and what the index and the feed showed at that moment. */
    private record Call(String what, int engineId, long sequence, long logSequence, long indexBrokerSequence,
            long feedNext, ResolvedBatch batch) {
    }

    private final class RecordingLog implements BatchLog {
        final List<Call> calls = new ArrayList<>();
        long next = 41;
        long written = 40;
        Runnable onWritten;

        @Override
        public long nextSequence() {
            return next;
        }

        @Override
        public long append(int engineId, long incarnation, long sequence, ResolvedBatch batch, long fingerprint,
                GroupKinds kinds) {
            calls.add(new Call("append", engineId, sequence, next, index.holdings(engineId, false).brokerSequence(),
                    feed.next(), batch));
            return next++;
        }

        @Override
        public long appendReset(int engineId, long incarnation) {
            calls.add(new Call("reset", engineId, -1, next, index.holdings(engineId, false).brokerSequence(),
                    feed.next(), null));
            return next++;
        }

        @Override
        public void forget(int engineId) {
            calls.add(new Call("forget", engineId, -1, next, -1, feed.next(), null));
        }

        @Override
        public void roundEnd(long nowMs) {
            calls.add(new Call("round", -1, nowMs, next, -1, feed.next(), null));
        }

        @Override
        public String brokerId() {
            return "log-broker";
        }

        @Override
        public long writtenThrough() {
            return written;
        }

        @Override
        public void onWritten(Runnable listener) {
            onWritten = listener;
        }
    }

    @Test
    void appliesToTheIndexThenLogsThenPublishesUnderTheLogsSequence() {
        BatchApplier applier = new BatchApplier(index, log, feed);
        applier.followLog();
        assertThat(feed.brokerId()).isEqualTo("log-broker");
        assertThat(feed.next()).isEqualTo(41);

        applier.onBatch(0, 1, 7, Events.batch(Events.gpu(new long[] {1, 2}, null, Events.tokens(100, 32))), 99,
                new GroupKinds());
        Call append = log.calls.get(0);
        assertThat(append.what()).isEqualTo("append");
        assertThat(append.logSequence()).isEqualTo(41);
        assertThat(append.indexBrokerSequence()).as("the index applied first, under the log's sequence").isEqualTo(41);
        assertThat(append.feedNext()).as("the feed publishes only after the log appended").isEqualTo(41);
        assertThat(append.batch().changes()).as("the log gets the batch resolved").hasSize(1);
        assertThat(feed.next()).isEqualTo(42);
        assertThat(feed.sendable()).as("watchers get only what the log wrote").isEqualTo(41);
        log.written = 41;
        assertThat(feed.sendable()).isEqualTo(42);
        assertThat(log.onWritten).isNotNull();

        applier.onRoundEnd(5);
        assertThat(log.calls.get(1).what()).isEqualTo("round");
    }

    @Test
    void aResetIsLoggedAndPublishedUnderTheNextSequenceWhileARemovalIsOnlyForgotten() {
        BatchApplier applier = new BatchApplier(index, log, feed);
        applier.followLog();
        applier.onBatch(0, 1, 0, Events.batch(Events.gpu(new long[] {1}, null, Events.tokens(100, 16))));
        applier.onReset(0, 2, ResetReason.RESTART_BY_SEQUENCE);
        Call reset = log.calls.get(1);
        assertThat(reset.what()).isEqualTo("reset");
        assertThat(reset.logSequence()).isEqualTo(42);
        assertThat(reset.indexBrokerSequence()).isEqualTo(42);
        assertThat(reset.feedNext()).isEqualTo(42);
        assertThat(feed.next()).isEqualTo(43);
        assertThat(index.blocksOf(0)).isZero();

        applier.onReset(0, 2, ResetReason.REMOVED);
        assertThat(log.calls.get(2).what()).isEqualTo("forget");
        assertThat(feed.next()).as("a removal is not numbered").isEqualTo(43);
        assertThat(index.holdings(0, false).sequence()).isEqualTo(-1);
    }

    @Test
    void withoutALogTheFeedNumbersAndWithoutEitherTheIndexAloneApplies() {
        BatchApplier fed = new BatchApplier(index, null, feed);
        fed.onBatch(0, 1, 0, Events.batch(Events.gpu(new long[] {1}, null, Events.tokens(100, 16))), 5, null);
        fed.onReset(0, 2, ResetReason.VOID);
        assertThat(feed.next()).isEqualTo(3);
        assertThat(index.holdings(0, false).brokerSequence()).isEqualTo(2);

        BlockIndex alone = new BlockIndex(id -> "m", 16, PrefixScorer.Weights.DEFAULT);
        BatchApplier indexOnly = BatchApplier.indexOnly(alone);
        indexOnly.onBatch(0, 1, 3, Events.batch(Events.gpu(new long[] {1, 2}, null, Events.tokens(100, 32))));
        indexOnly.onRoundEnd(1);
        assertThat(alone.blocksOf(0)).isEqualTo(2);
        assertThat(alone.appliedSequence(0)).isEqualTo(3);
        indexOnly.onReset(0, 2, ResetReason.RESTART_BY_SEQUENCE);
        assertThat(alone.blocksOf(0)).isZero();
    }
}
