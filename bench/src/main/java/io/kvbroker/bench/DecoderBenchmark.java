package io.kvbroker.bench;

import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEventBatch;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.core.buffer.ArrayBufferInput;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Decoder throughput over a payload set, next to its floor: msgpack-core skipping the same bytes value by value.
 * One operation is one pass over the whole set; {@link DecoderBench} turns that into MB/s and block events/s.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class DecoderBenchmark {
    /** Which payload set: the captured vectors, or a realistic mix of about 1 KB map-form batches. */
    @Param({"golden", "mix"})
    public String set;

    private byte[][] payloads;
    private final KvEventDecoder decoder = new KvEventDecoder();
    private final GroupKinds kinds = new GroupKinds();
    private final ArrayBufferInput input = new ArrayBufferInput(new byte[0]);
    private final MessageUnpacker unpacker = MessagePack.newDefaultUnpacker(input);

    @Setup(Level.Trial)
    public void load() {
        List<byte[]> list = set.equals("golden") ? Payloads.golden() : Payloads.realisticMix(2048, 42);
        payloads = list.toArray(new byte[0][]);
    }

    @Benchmark
    public void decode(Blackhole hole) throws MalformedMessageException {
        for (byte[] payload : payloads) {
            KvEventBatch batch = decoder.decode(payload, 0, payload.length, kinds);
            hole.consume(batch);
        }
    }

    /** The floor: the same bytes walked by msgpack-core without building anything. */
    @Benchmark
    public void skip(Blackhole hole) throws IOException {
        for (byte[] payload : payloads) {
            input.reset(payload);
            unpacker.reset(input);
            unpacker.skipValue();
            hole.consume(unpacker.getTotalReadBytes());
        }
    }
}
