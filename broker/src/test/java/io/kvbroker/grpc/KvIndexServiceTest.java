package io.kvbroker.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import io.kvbroker.core.ContentKeys;
import io.kvbroker.core.Media;
import io.kvbroker.core.PrefixScorer;
import io.kvbroker.engine.Endpoint;
import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineRegistry;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.index.BlockIndex;
import io.kvbroker.index.Events;
import io.kvbroker.lifecycle.Readiness;
import io.kvbroker.proto.v1.EngineState;
import io.kvbroker.proto.v1.HintRequest;
import io.kvbroker.proto.v1.HintResponse;
import io.kvbroker.proto.v1.KvIndexServiceGrpc.KvIndexServiceBlockingStub;
import io.kvbroker.proto.v1.KvIndexServiceGrpc;
import io.kvbroker.proto.v1.ListEnginesRequest;
import io.kvbroker.proto.v1.LookupRequest;
import io.kvbroker.proto.v1.LookupResponse;
import io.kvbroker.proto.v1.ScoreRequest;
import io.kvbroker.proto.v1.ScoreResponse;
import io.kvbroker.query.IndexQueries;
import io.kvbroker.query.PendingHints;
import io.kvbroker.query.QueryLimits;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The query API on a real server on an ephemeral port, over an index fed directly: what Score, Lookup,
 * ListEngines and Hint answer, every limit and invalid field with its status code, readiness, health and reflection.
 */
class KvIndexServiceTest {
    private static final String MODEL = "m";
    private static final QueryLimits LIMITS = new QueryLimits(1_000, 10, 8, 1_000, 5_000);
    /** 65 tokens: 4 chunks of 16 score (the engine recomputes the last token). */
    private static final int[] PROMPT = Events.tokens(100, 65);

    private final EngineRegistry registry = new EngineRegistry();
    private final BlockIndex index = new BlockIndex(id -> registry.entry(id).spec().model(), 16,
            PrefixScorer.Weights.DEFAULT);
    private final AtomicLong hintClockMs = new AtomicLong(1_000_000);
    private final Readiness readiness = new Readiness();
    private GrpcServer server;
    private ManagedChannel channel;
    private KvIndexServiceBlockingStub stub;

    @BeforeEach
    void start() throws Exception {
        for (int i = 0; i < 3; i++) {
            registry.register(new EngineSpec(new EngineKey("pod-" + i, 0), MODEL,
                    Endpoint.parse("tcp://127.0.0.1:" + (20_000 + i)), Optional.empty(), ""));
        }
        // Engine 0 holds the prompt's 4 chunks, engine 1 its first 2, engine 2 nothing.
        index.apply(0, 1, 7, Events.batch(Events.gpu(new long[] {1, 2, 3, 4}, null, Events.tokens(100, 64))));
        index.apply(1, 1, 3, Events.batch(Events.gpu(new long[] {11, 12}, null, Events.tokens(100, 32))));
        server = new GrpcServer("127.0.0.1", 0, 8_192, new IndexQueries(index, registry, id -> null,
                new PendingHints(hintClockMs::get, LIMITS.maxHintsPerEngine()), System::currentTimeMillis), LIMITS,
                readiness);
        server.start();
        readiness.set(true);
        channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
        stub = KvIndexServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        channel.shutdownNow();
        server.stop(Duration.ofSeconds(5));
    }

    private static ScoreRequest.Builder score(int[] tokens) {
        return ScoreRequest.newBuilder().setModel(MODEL).addAllTokenIds(Arrays.stream(tokens).boxed().toList());
    }

    private static long[] promptKeys() {
        return Arrays.copyOf(new ContentKeys(16).promptKeys(MODEL, null, PROMPT), 4);
    }

    private static List<Long> boxed(long[] values) {
        return Arrays.stream(values).boxed().toList();
    }

    @Test
    void scoreReturnsEngineRowsWithStateSequenceAndUnits() {
        ScoreResponse response = stub.score(score(PROMPT).build());
        assertThat(response.getEngineIdsList()).containsExactly(0, 1);
        assertThat(response.getGpuBlocksList()).containsExactly(4, 2);
        assertThat(response.getGpuTokensList()).containsExactly(64, 32);
        assertThat(response.getOffloadTokensList()).containsExactly(0, 0);
        assertThat(response.getScoresList()).containsExactly(64.0, 32.0);
        assertThat(response.getAppliedSequencesList()).containsExactly(7L, 3L);
        assertThat(response.getStatesList()).as("no ingest stream yet")
                .containsExactly(EngineState.ENGINE_STATE_CONNECTING, EngineState.ENGINE_STATE_CONNECTING);
        assertThat(response.getLagBatchesList()).containsExactly(0L, 0L);
        assertThat(response.getGranularity()).isEqualTo(16);
        assertThat(response.getScoredChunks()).isEqualTo(4);
        assertThat(response.getPendingEngineIdsCount()).isZero();

        assertThat(stub.score(score(PROMPT).setTopK(1).build()).getEngineIdsList()).containsExactly(0);
        assertThat(stub.score(score(PROMPT).setMinTokens(33).build()).getEngineIdsList()).containsExactly(0);
        assertThat(stub.score(score(PROMPT).addEngineIds(1).addEngineIds(2).build()).getEngineIdsList())
                .containsExactly(1);
        assertStatus(() -> stub.score(score(PROMPT).setModel("other").build()), Status.Code.NOT_FOUND, "model: ", "");
        ScoreResponse byKeys = stub.score(ScoreRequest.newBuilder().setModel(MODEL)
                .addAllContentKeys(boxed(promptKeys())).build());
        assertThat(byKeys.getEngineIdsList()).containsExactly(0, 1);
        assertThat(byKeys.getGpuBlocksList()).containsExactly(4, 2);
    }

    @Test
    void lookupFindsHoldersByContentKeyAndByEngineHash() {
        long[] keys = promptKeys();
        LookupResponse byKeys = stub.lookup(LookupRequest.newBuilder().addAllContentKeys(boxed(keys))
                .addContentKeys(42).build());
        assertThat(byKeys.getHolderCountsList()).containsExactly(2, 2, 1, 1, 0);
        assertThat(byKeys.getEngineIdsList().subList(0, 2)).containsExactlyInAnyOrder(0, 1);
        assertThat(byKeys.getMediaList()).containsOnly(Media.GPU);

        LookupResponse byHashes = stub.lookup(LookupRequest.newBuilder().addBlockHashes(12).addBlockHashes(3)
                .addBlockHashes(99).build());
        assertThat(byHashes.getHolderCountsList()).containsExactly(1, 1, 0);
        assertThat(byHashes.getEngineIdsList()).containsExactly(1, 0);
    }

    @Test
    void listEnginesReportsEveryEngineWithItsIndexSummary() {
        registry.remove(2);
        assertThat(stub.listEngines(ListEnginesRequest.getDefaultInstance()).getEnginesList())
                .as("by default the current engines only").extracting(e -> e.getPod() + "/" + e.getRank())
                .containsExactly("pod-0/0", "pod-1/0");
        var engines = stub.listEngines(ListEnginesRequest.newBuilder().setIncludeRemoved(true).build());
        assertThat(engines.getGranularity()).isEqualTo(16);
        assertThat(engines.getEnginesList()).extracting(e -> e.getPod() + "/" + e.getRank())
                .containsExactly("pod-0/0", "pod-1/0", "pod-2/0");
        assertThat(engines.getEngines(0).getBlocks()).isEqualTo(4);
        assertThat(engines.getEngines(0).getGpuBlocks()).isEqualTo(4);
        assertThat(engines.getEngines(0).getAppliedSequence()).isEqualTo(7);
        assertThat(engines.getEngines(1).getBlocks()).isEqualTo(2);
        assertThat(engines.getEngines(1).getEndpoint()).isEqualTo("tcp://127.0.0.1:20001");
        assertThat(engines.getEngines(2).getState()).isEqualTo(EngineState.ENGINE_STATE_REMOVED);
        assertThat(engines.getEngines(2).getAppliedSequence()).isEqualTo(-1);
    }

    @Test
    void hintedChunksArePendingAfterTheCachedRunUntilTheEngineHoldsThem() {
        HintResponse cold = stub.hint(HintRequest.newBuilder().setEngineId(2).setModel(MODEL)
                .addAllTokenIds(Arrays.stream(PROMPT).boxed().toList()).build());
        assertThat(cold.getRecordedBlocks()).isEqualTo(4);
        assertThat(cold.getTtlMs()).as("the default ttl").isEqualTo(1_000);
        HintResponse warm = stub.hint(HintRequest.newBuilder().setEngineId(1).addAllContentKeys(boxed(promptKeys()))
                .setTtlMs(2_000).build());
        assertThat(warm.getRecordedBlocks()).as("engine 1 holds the first two").isEqualTo(2);

        ScoreResponse response = stub.score(score(PROMPT).build());
        assertThat(response.getEngineIdsList()).as("hints never change the cached rows").containsExactly(0, 1);
        assertThat(response.getPendingEngineIdsList()).containsExactly(1, 2);
        assertThat(response.getPendingBlocksList()).containsExactly(2, 4);
        assertThat(response.getPendingTokensList()).containsExactly(32, 64);

        // Engine 2 confirms: its blocks arrive, and they are cached, no longer pending.
        index.apply(2, 1, 0, Events.batch(Events.gpu(new long[] {21, 22, 23, 24}, null, Events.tokens(100, 64))));
        ScoreResponse confirmed = stub.score(score(PROMPT).build());
        assertThat(confirmed.getEngineIdsList()).containsExactlyInAnyOrder(0, 1, 2);
        assertThat(confirmed.getPendingEngineIdsList()).containsExactly(1);
        assertThat(stub.score(score(PROMPT).addEngineIds(0).addEngineIds(2).build()).getPendingEngineIdsCount())
                .as("the engine filter applies to pending engines too").isZero();
        registry.remove(1);
        assertThat(stub.score(score(PROMPT).build()).getPendingEngineIdsCount())
                .as("a removed engine's hints go with it").isZero();
    }

    @Test
    void pendingRunOfAnEngineCutByTopKStartsAfterItsCachedRun() {
        stub.hint(HintRequest.newBuilder().setEngineId(1).addAllContentKeys(boxed(promptKeys())).build());
        ScoreResponse response = stub.score(score(PROMPT).setTopK(1).build());
        assertThat(response.getEngineIdsList()).containsExactly(0);
        assertThat(response.getPendingEngineIdsList()).containsExactly(1);
        assertThat(response.getPendingBlocksList()).containsExactly(2);
    }

    @Test
    void hintsExpireAfterTheirTimeToLive() {
        stub.hint(HintRequest.newBuilder().setEngineId(2).setModel(MODEL)
                .addAllTokenIds(Arrays.stream(PROMPT).boxed().toList()).setTtlMs(100).build());
        hintClockMs.addAndGet(99);
        assertThat(stub.score(score(PROMPT).build()).getPendingEngineIdsList()).containsExactly(2);
        hintClockMs.addAndGet(1);
        assertThat(stub.score(score(PROMPT).build()).getPendingEngineIdsCount()).isZero();
    }

    @Test
    void hintsPerEngineAreBounded() {
        long[] nine = {101, 102, 103, 104, 105, 106, 107, 108, 109};
        assertStatus(() -> stub.hint(HintRequest.newBuilder().setEngineId(2).addAllContentKeys(boxed(nine)).build()),
                Status.Code.RESOURCE_EXHAUSTED, "engine_id: ", "grpc.maxHintsPerEngine");
        long[] eight = Arrays.copyOf(nine, 8);
        assertThat(stub.hint(HintRequest.newBuilder().setEngineId(2).addAllContentKeys(boxed(eight)).build())
                .getEnginePendingBlocks()).isEqualTo(8);
        assertStatus(() -> stub.hint(HintRequest.newBuilder().setEngineId(2).addContentKeys(201).build()),
                Status.Code.RESOURCE_EXHAUSTED, "engine_id: ", "8 pending");
        assertThat(stub.hint(HintRequest.newBuilder().setEngineId(1).addContentKeys(201).build())
                .getEnginePendingBlocks()).as("other engines have their own bound").isEqualTo(1);
        hintClockMs.addAndGet(1_000);
        long[] others = {201, 202, 203, 204, 205, 206, 207, 208};
        assertThat(stub.hint(HintRequest.newBuilder().setEngineId(2).addAllContentKeys(boxed(others)).build())
                .getEnginePendingBlocks()).as("expired hints no longer count").isEqualTo(8);
    }

    @Test
    void everyInvalidFieldGetsInvalidArgumentNamingIt() {
        Map<String, Runnable> calls = new java.util.LinkedHashMap<>();
        calls.put("model", () -> stub.score(score(PROMPT).setModel("").build()));
        calls.put("token_ids", () -> stub.score(ScoreRequest.newBuilder().setModel(MODEL).build()));
        calls.put("content_keys", () -> stub.score(score(PROMPT).addContentKeys(1).build()));
        calls.put("token_ids ", () -> stub.score(score(Events.tokens(0, 1_001)).build()));
        calls.put("token_ids  ", () -> stub.score(score(PROMPT).addTokenIds(-1).build()));
        calls.put("content_keys ", () -> stub.score(ScoreRequest.newBuilder().setModel(MODEL)
                .addAllContentKeys(boxed(new long[1_000 / 16 + 1])).build()));
        calls.put("engine_ids", () -> stub.score(score(PROMPT).addEngineIds(3).build()));
        calls.put("engine_ids ", () -> stub.score(score(PROMPT).addEngineIds(-1).build()));
        calls.put("content_keys  ", () -> stub.lookup(LookupRequest.getDefaultInstance()));
        calls.put("block_hashes", () -> stub.lookup(LookupRequest.newBuilder().addContentKeys(1).addBlockHashes(1)
                .build()));
        calls.put("content_keys   ", () -> stub.lookup(LookupRequest.newBuilder()
                .addAllContentKeys(boxed(new long[11])).build()));
        calls.put("block_hashes ", () -> stub.lookup(LookupRequest.newBuilder()
                .addAllBlockHashes(boxed(new long[11])).build()));
        calls.put("engine_id", () -> stub.hint(HintRequest.newBuilder().setEngineId(3).addContentKeys(1).build()));
        calls.put("engine_id ", () -> {
            registry.remove(2);
            stub.hint(HintRequest.newBuilder().setEngineId(2).addContentKeys(1).build());
        });
        calls.put("model ", () -> stub.hint(HintRequest.newBuilder().setEngineId(0).addTokenIds(1).build()));
        calls.put("token_ids   ", () -> stub.hint(HintRequest.newBuilder().setEngineId(0).build()));
        calls.put("ttl_ms", () -> stub.hint(HintRequest.newBuilder().setEngineId(0).addContentKeys(1)
                .setTtlMs(5_001).build()));
        calls.forEach((field, call) -> assertStatus(call::run, Status.Code.INVALID_ARGUMENT, field.trim() + ": ",
                ""));
    }

    /**
     * Every field at an absurd but well-formed value: uint32 counts at 2^32-1 (what a negative int becomes on the
     * wire), names of 4,000 characters (half the message limit here), an unknown model (NOT_FOUND) and adapter. Each is served
     * with a sensible answer or refused naming the field, and the server answers a normal request afterwards.
     */
    @Test
    void absurdValuesInEveryFieldAreServedOrRefusedAndTheServerGoesOn() {
        String huge = "x".repeat(4_000);
        assertThat(stub.score(score(PROMPT).setTopK(-1).build()).getEngineIdsList()).as("top_k 2^32-1: all")
                .containsExactly(0, 1);
        assertThat(stub.score(score(PROMPT).setMinTokens(-1).build()).getEngineIdsCount()).as("min_tokens 2^32-1")
                .isZero();
        assertStatus(() -> stub.score(score(PROMPT).setModel(huge).build()), Status.Code.NOT_FOUND, "model: ",
                "no engine serves 'xxx");
        assertThat(stub.score(score(PROMPT).setLoraName(huge).build()).getEngineIdsCount()).isZero();
        assertThat(stub.score(score(PROMPT).setTopK(-1).setMinTokens(-1).setLoraName(huge).addEngineIds(0)
                .build()).getEngineIdsCount()).isZero();
        assertStatus(() -> stub.score(score(PROMPT).addEngineIds(Integer.MAX_VALUE).build()),
                Status.Code.INVALID_ARGUMENT, "engine_ids: ", "");
        assertStatus(() -> stub.hint(HintRequest.newBuilder().setEngineId(-1).addContentKeys(1).build()),
                Status.Code.INVALID_ARGUMENT, "engine_id: ", "");
        assertStatus(() -> stub.hint(HintRequest.newBuilder().setEngineId(0).addContentKeys(1).setTtlMs(-1)
                .build()), Status.Code.INVALID_ARGUMENT, "ttl_ms: ", "");
        assertThat(stub.hint(HintRequest.newBuilder().setEngineId(0).setModel(MODEL).setLoraName(huge)
                .addTokenIds(1).build()).getRecordedBlocks()).as("a prompt shorter than a block records nothing")
                .isZero();
        assertThat(stub.lookup(LookupRequest.newBuilder().addContentKeys(-1L).addContentKeys(Long.MIN_VALUE)
                .build()).getHolderCountsList()).containsExactly(0, 0);
        assertThat(stub.score(score(PROMPT).build()).getEngineIdsList()).as("the server still answers")
                .containsExactly(0, 1);
    }

    /**
     * A gateway's typo in the model: Score answered OK and empty (read as "nobody holds it"), and a Hint for an
     * engine of another model was recorded. A known model whose engines hold nothing, or whose engines were all
     * removed, still answers OK.
     */
    @Test
    void aModelNoEngineServesIsNotFoundAndAHintForAnotherModelIsRefused() {
        assertStatus(() -> stub.score(score(PROMPT).setModel("llama").build()), Status.Code.NOT_FOUND,
                "model: no engine serves 'llama'", "served: 'm'");
        assertStatus(() -> stub.score(ScoreRequest.newBuilder().setModel("llama").addContentKeys(1).build()),
                Status.Code.NOT_FOUND, "model: ", "");
        assertStatus(() -> stub.hint(HintRequest.newBuilder().setEngineId(0).setModel("llama").addTokenIds(1)
                .build()), Status.Code.INVALID_ARGUMENT, "model: engine 0 serves 'm', not 'llama'", "");
        assertStatus(() -> stub.hint(HintRequest.newBuilder().setEngineId(0).setModel("llama").addContentKeys(1)
                .build()), Status.Code.INVALID_ARGUMENT, "model: ", "");
        assertThat(stub.hint(HintRequest.newBuilder().setEngineId(0).addContentKeys(1).build()).getRecordedBlocks())
                .as("content keys without a model are still taken").isOne();

        int other = registry.register(new EngineSpec(new EngineKey("pod-q", 0), "qwen",
                Endpoint.parse("tcp://127.0.0.1:20100"), Optional.empty(), ""));
        assertThat(stub.score(score(PROMPT).setModel("qwen").build()).getEngineIdsCount())
                .as("a known model whose engine holds nothing").isZero();
        registry.remove(other);
        assertThat(stub.score(score(PROMPT).setModel("qwen").build()).getEngineIdsCount())
                .as("a model whose engines were all removed is still known").isZero();
    }

    /**
     * Requests over the message limit: gRPC's transport logged each at WARNING with a stack trace. Now one line a
     * minute without a trace, naming how many it left out.
     */
    @Test
    void oversizedRequestsAreLoggedOnceAMinuteWithoutAStackTrace() {
        AtomicLong clockMs = new AtomicLong();
        RefusedRequestLog log = RefusedRequestLog.instance();
        log.useClock(clockMs::get);
        java.util.logging.Logger transport = java.util.logging.Logger.getLogger(RefusedRequestLog.LOGGER);
        List<java.util.logging.LogRecord> logged = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord record) {
                logged.add(record);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        transport.addHandler(capture);
        try {
            int[] large = new int[2_000];
            Arrays.fill(large, 1 << 30);
            for (int i = 0; i < 5; i++) {
                assertStatus(() -> stub.score(score(large).build()), Status.Code.RESOURCE_EXHAUSTED, "", "");
            }
            clockMs.addAndGet(RefusedRequestLog.INTERVAL_MS);
            assertStatus(() -> stub.score(score(large).build()), Status.Code.RESOURCE_EXHAUSTED, "", "");
            // The transport logs before it answers: every record is in by now.
            assertThat(logged).hasSize(2);
            assertThat(logged).allSatisfy(record -> {
                assertThat(record.getThrown()).isNull();
                assertThat(record.getMessage()).startsWith("refused a client's request before reading it:"
                        + " RESOURCE_EXHAUSTED").contains("grpc.maxMessageBytes");
            });
            assertThat(logged.get(1).getMessage()).contains("4 more refused since the last such line");
        } finally {
            transport.removeHandler(capture);
            log.useClock(System::currentTimeMillis);
        }
    }

    /** Bytes that are no protobuf message of the method's request type, sent to every method of the service. */
    @Test
    void requestsThatAreNoProtobufGetInvalidArgumentOnEveryMethod() {
        byte[][] garbage = {{(byte) 0xff}, {0x0a, 0x7f, 0x01}, {0x08}, {0x12, (byte) 0xff, (byte) 0xff, (byte) 0xff,
            (byte) 0xff, 0x0f}, {(byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80,
            (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, 0x01}};
        MethodDescriptor.Marshaller<byte[]> raw = new MethodDescriptor.Marshaller<>() {
            @Override
            public InputStream stream(byte[] value) {
                return new ByteArrayInputStream(value);
            }

            @Override
            public byte[] parse(InputStream stream) {
                try {
                    return stream.readAllBytes();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        };
        int tried = 0;
        for (var method : KvIndexServiceGrpc.getServiceDescriptor().getMethods()) {
            var rawMethod = method.toBuilder(raw, raw).build();
            for (byte[] bytes : garbage) {
                var options = CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS);
                assertStatus(() -> {
                    if (rawMethod.getType() == MethodDescriptor.MethodType.UNARY) {
                        ClientCalls.blockingUnaryCall(channel, rawMethod, options, bytes);
                    } else {
                        ClientCalls.blockingServerStreamingCall(channel, rawMethod, options, bytes)
                                .hasNext();
                    }
                }, Status.Code.INVALID_ARGUMENT, "request: not a valid " + method.getBareMethodName() + " request",
                        "");
                tried++;
            }
        }
        assertThat(tried).isEqualTo(5 * garbage.length);
        assertThat(stub.score(score(PROMPT).build()).getEngineIdsCount()).as("the server still answers").isEqualTo(2);
    }

    @Test
    void requestsLargerThanTheMessageLimitAreRefused() {
        // 2,000 five-byte token ids: past the 8 KiB message limit, which is checked before the token limit.
        int[] large = new int[2_000];
        Arrays.fill(large, 1 << 30);
        assertStatus(() -> stub.score(score(large).build()), Status.Code.RESOURCE_EXHAUSTED, "", "");
        assertThat(stub.score(score(PROMPT).build()).getEngineIdsCount()).as("the server still answers").isEqualTo(2);
    }

    @Test
    void unavailableAndNotServingUntilReady() {
        HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
        Consumer<ServingStatus> healthIs = status -> {
            assertThat(health.check(HealthCheckRequest.getDefaultInstance()).getStatus()).isEqualTo(status);
            assertThat(health.check(HealthCheckRequest.newBuilder().setService(KvIndexServiceGrpc.SERVICE_NAME)
                    .build()).getStatus()).isEqualTo(status);
        };
        healthIs.accept(ServingStatus.SERVING);
        readiness.set(false);
        healthIs.accept(ServingStatus.NOT_SERVING);
        assertStatus(() -> stub.score(score(PROMPT).build()), Status.Code.UNAVAILABLE, "", "starting");
        assertStatus(() -> stub.listEngines(ListEnginesRequest.getDefaultInstance()), Status.Code.UNAVAILABLE, "",
                "");
        readiness.set(true);
        healthIs.accept(ServingStatus.SERVING);
        assertThat(stub.score(score(PROMPT).build()).getEngineIdsCount()).isEqualTo(2);
    }

    @Test
    void reflectionListsTheService() throws Exception {
        CompletableFuture<List<String>> services = new CompletableFuture<>();
        StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel)
                .serverReflectionInfo(new StreamObserver<>() {
                    @Override
                    public void onNext(ServerReflectionResponse response) {
                        List<String> names = new ArrayList<>();
                        for (ServiceResponse service : response.getListServicesResponse().getServiceList()) {
                            names.add(service.getName());
                        }
                        services.complete(names);
                    }

                    @Override
                    public void onError(Throwable t) {
                        services.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
        requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
        requests.onCompleted();
        assertThat(services.get(10, TimeUnit.SECONDS)).contains("kvbroker.v1.KvIndexService", "grpc.health.v1.Health");
    }

    private static void assertStatus(Runnable call, Status.Code code, String prefix, String contains) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).as(String.valueOf(e.getStatus())).isEqualTo(code);
            assertThat(String.valueOf(e.getStatus().getDescription())).startsWith(prefix).contains(contains);
        });
    }
}
