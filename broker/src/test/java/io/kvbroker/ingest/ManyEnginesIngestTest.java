package io.kvbroker.ingest;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.testing.Await;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** One ingest context holds sockets for hundreds of engines (JeroMQ's default of 1024 sockets stopped it near 170). */
class ManyEnginesIngestTest {
    private static final int ENGINES = 300;

    @Test
    void threeHundredEnginesWithReplaySocketsFitInOneContext() throws Exception {
        EngineRegistry registry = new EngineRegistry();
        // Nothing listens on these ports: the sockets exist and keep retrying, which is all this test needs.
        ZmqIngest ingest = new ZmqIngest(registry, IngestSink.NONE, new EngineStream.Limits(1000, 3, 60_000, 100,
                60_000), ListenSettings.OFF, 1000, 10_000, System::currentTimeMillis);
        for (int i = 0; i < ENGINES; i++) {
            registry.register(new EngineSpec(new EngineKey("pod-" + i, 0), "m", new Endpoint("tcp", "127.0.0.1", 1),
                    Optional.of(new Endpoint("tcp", "127.0.0.1", 2)), ""));
        }
        ingest.start();
        try {
            Await.until(ENGINES + " engines' sockets", Duration.ofSeconds(60),
                    () -> ingest.streams().size() == ENGINES || !ingest.isRunning());
            // Every engine's sockets are created before its stream is listed, so all were made.
            assertThat(ingest.isRunning()).as("the ingest loop survived").isTrue();
            assertThat(ingest.streams()).hasSize(ENGINES);
        } finally {
            ingest.stop(Duration.ofSeconds(10));
        }
    }
}
