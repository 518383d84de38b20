package io.kvbroker.sim;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.testing.Await;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/** The simulated engine's record of what it published agrees with what went on the wire, across a restart. */
class SimulatedEngineTest {

    @Test
    void publishedTimestampsAreTheTimestampsSentLiveInEveryIncarnation() throws Exception {
        try (ZContext context = new ZContext(1)) {
            context.setLinger(0);
            SimulatedEngine engine = new SimulatedEngine(context, Simulator.fleet(1, 3).get(0), 0, 0);
            ZMQ.Socket sub = context.createSocket(SocketType.SUB);
            sub.subscribe(new byte[0]);
            sub.setReceiveTimeOut(10_000);
            sub.connect(engine.endpoint());
            // A SUB misses what is sent before its subscription arrives: publish until one batch gets through.
            Await.until("the subscription to take", Duration.ofSeconds(30), () -> {
                engine.step();
                return sub.recv(ZMQ.DONTWAIT) != null;
            });
            while (sub.hasReceiveMore()) {
                sub.recv(0);
            }
            KvEventDecoder decoder = new KvEventDecoder();
            for (int incarnation = 0; incarnation < 2; incarnation++) {
                if (incarnation == 1) {
                    engine.restart();
                }
                for (int i = 0; i < 50; i++) {
                    engine.step();
                }
                List<Double> published = engine.publishedTimestamps();
                assertThat(published).hasSize((int) engine.nextSequence());
                // Every batch on the wire up to this incarnation's last, the rest of the warm-up's included.
                long sequence;
                do {
                    byte[][] frames = {sub.recv(0), sub.recv(0), sub.recv(0)};
                    assertThat(frames[2]).as("a batch of incarnation %d", incarnation).isNotNull();
                    WireFrames.LiveMessage message = WireFrames.live(frames);
                    sequence = message.sequence();
                    assertThat(decoder.decode(message.payload()).timestamp())
                            .as("sequence %d of incarnation %d", sequence, incarnation)
                            .isEqualTo(published.get((int) sequence));
                } while (sequence < engine.nextSequence() - 1);
            }
            assertThat(engine.publishedTimestamps()).as("the second incarnation starts again at 0").hasSize(50);
            engine.close();
        }
    }
}
