package io.kvbroker.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvbroker.engine.EngineKey;
import io.kvbroker.engine.EngineSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
    @TempDir
    Path dir;

    private Path yaml(String text) throws Exception {
        Path file = dir.resolve("broker.yaml");
        Files.writeString(file, text);
        return file;
    }

    private static BrokerConfig load(Optional<Path> file, Map<String, String> env, Map<String, String> flags)
            throws ConfigException {
        return ConfigLoader.load(file, env, flags);
    }

    private static ConfigException failure(Optional<Path> file, Map<String, String> env, Map<String, String> flags) {
        try {
            load(file, env, flags);
        } catch (ConfigException e) {
            return e;
        }
        throw new AssertionError("configuration was accepted");
    }

    @Test
    void embeddedDefaultsValidate() {
        BrokerConfig config = BrokerConfig.defaults();
        assertThat(config.get(Settings.SHUTDOWN_DRAIN_TIMEOUT_MS)).isEqualTo(10_000);
        assertThat(config.get(Settings.ENGINES_STATIC)).isEmpty();
        assertThat(config.source(Settings.LOG_FORMAT)).isEqualTo("default");
    }

    @Test
    void fileThenEnvironmentThenFlagsEachWin() throws Exception {
        Path file = yaml("shutdown:\n  drainTimeoutMs: 1000\nlog:\n  level: debug\n  format: json\n");
        Map<String, String> env = Map.of("KVBROKER_LOG_LEVEL", "warn", "KVBROKER_LOG_FORMAT", "plain");
        Map<String, String> flags = Map.of("log.format", "json");
        BrokerConfig config = load(Optional.of(file), env, flags);
        assertThat(config.get(Settings.SHUTDOWN_DRAIN_TIMEOUT_MS)).isEqualTo(1000);
        assertThat(config.source(Settings.SHUTDOWN_DRAIN_TIMEOUT_MS)).isEqualTo("file " + file);
        assertThat(config.get(Settings.LOG_LEVEL)).isEqualTo("warn");
        assertThat(config.source(Settings.LOG_LEVEL)).isEqualTo("env KVBROKER_LOG_LEVEL");
        assertThat(config.get(Settings.LOG_FORMAT)).isEqualTo("json");
        assertThat(config.source(Settings.LOG_FORMAT)).isEqualTo("flag --set");
    }

    @Test
    void everyKeyHasAnEnvironmentName() {
        assertThat(Settings.SHUTDOWN_DRAIN_TIMEOUT_MS.envName()).isEqualTo("KVBROKER_SHUTDOWN_DRAIN_TIMEOUT_MS");
        assertThat(Settings.ENGINES_STATIC.envName()).isEqualTo("KVBROKER_ENGINES_STATIC");
        assertThat(Settings.ALL.stream().map(Setting::envName).distinct()).hasSameSizeAs(Settings.ALL);
    }

    @Test
    void badValuesNameTheirKey() throws Exception {
        assertThat(failure(Optional.empty(), Map.of("KVBROKER_SHUTDOWN_DRAIN_TIMEOUT_MS", "soon"), Map.of()).key())
                .isEqualTo("shutdown.drainTimeoutMs");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("shutdown.drainTimeoutMs", "-1")).getMessage())
                .isEqualTo("shutdown.drainTimeoutMs: must be from 0 to 600000, was -1");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("log.format", "xml")).getMessage())
                .startsWith("log.format: must be one of plain, json");
        assertThat(failure(Optional.of(yaml("log:\n  level: [1, 2]\n")), Map.of(), Map.of()).key())
                .isEqualTo("log.level");
    }

    /**
     * Every key, given a value of the wrong shape in the file and a wrong value of its type on the command line and in
     * the environment, stops start-up with a message that starts with the key.
     */
    @Test
    void everyKeyWithABadValueIsNamed() throws Exception {
        int tried = 0;
        for (Setting<?> setting : Settings.ALL) {
            // The wrong shape: a list where a scalar belongs, a map where a list belongs.
            String[] path = setting.key().split("\\.");
            StringBuilder file = new StringBuilder();
            for (int depth = 0; depth < path.length; depth++) {
                file.append("  ".repeat(depth)).append(path[depth]).append(':');
                file.append(depth < path.length - 1 ? "\n" : setting.structured() ? " {a: 1}\n" : " [1, 2]\n");
            }
            assertNamed(setting, failure(Optional.of(yaml(file.toString())), Map.of(), Map.of()));
            tried++;
            for (String bad : badTextsFor(setting.type())) {
                assertNamed(setting, failure(Optional.empty(), Map.of(), Map.of(setting.key(), bad)));
                assertNamed(setting, failure(Optional.empty(), Map.of(setting.envName(), bad), Map.of()));
                tried += 2;
            }
        }
        assertThat(tried).as("bad values tried").isGreaterThan(Settings.ALL.size() * 3);
    }

    /** Values no key of the type accepts, by the configuration table's type text. */
    private static List<String> badTextsFor(String type) {
        if (type.startsWith("integer")) {
            return List.of("twelve", "1.5", "99999999999", "-99999999999");
        }
        if (type.equals("number")) {
            return List.of("heavy", "-1", "NaN");
        }
        if (type.equals("true or false") || type.equals("boolean")) {
            return List.of("maybe");
        }
        if (type.contains(" or ") || type.startsWith("one of")) {
            return List.of("no-such-choice");
        }
        if (type.startsWith("list")) {
            return List.of("[unclosed", "{a: 1}");
        }
        return List.of();
    }

    private static void assertNamed(Setting<?> setting, ConfigException e) {
        assertThat(e.key()).as(e.getMessage()).startsWith(setting.key());
        assertThat(e.getMessage()).startsWith(setting.key());
    }

    @Test
    void discoveryAndMetricsSettingsParseAndBadOnesNameTheirKey() throws Exception {
        BrokerConfig config = load(Optional.of(yaml("discovery:\n  kubernetes:\n    enabled: true\n"
                + "    namespaces: [llm, batch]\n  dns:\n    services:\n      - {host: vllm.llm.svc, model: m,"
                + " replayPort: 5600, dataParallelSize: 4}\n")), Map.of("KVBROKER_METRICS_PORT", "9100"), Map.of());
        assertThat(config.get(Settings.DISCOVERY_KUBERNETES_ENABLED)).isTrue();
        assertThat(config.get(Settings.DISCOVERY_KUBERNETES_NAMESPACES)).containsExactly("llm", "batch");
        assertThat(config.get(Settings.DISCOVERY_DNS_SERVICES)).singleElement().satisfies(service -> {
            assertThat(service.port()).isEqualTo(5557);
            assertThat(service.replayPort()).contains(5600);
            assertThat(service.dataParallelSize()).isEqualTo(4);
        });
        assertThat(config.get(Settings.METRICS_PORT)).isEqualTo(9100);
        assertThat(failure(Optional.empty(), Map.of(), Map.of("discovery.kubernetes.enabled", "yes")).getMessage())
                .isEqualTo("discovery.kubernetes.enabled: must be true or false, was 'yes'");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("discovery.dns.services", "[{host: a}]")).key())
                .isEqualTo("discovery.dns.services[0].model");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("discovery.dns.services",
                "[{host: a, model: m, prot: 1}]")).key()).isEqualTo("discovery.dns.services[0].prot");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("metrics.port", "8000", "ingest.listen.port",
                "7999")).key()).isEqualTo("metrics.port");
    }

    @Test
    void unknownKeysStopStartUpWithASuggestion() throws Exception {
        ConfigException typo = failure(Optional.of(yaml("shutdown:\n  drainTimeoutMS: 5\n")), Map.of(), Map.of());
        assertThat(typo.key()).isEqualTo("shutdown.drainTimeoutMS");
        assertThat(typo.getMessage()).contains("did you mean shutdown.drainTimeoutMs?");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("grpc.prot", "1")).key()).isEqualTo("grpc.prot");
    }

    @Test
    void queryApiLimitsAreCheckedTogether() throws Exception {
        ConfigException ttl = failure(Optional.empty(), Map.of(), Map.of("grpc.defaultHintTtlMs", "70000"));
        assertThat(ttl.key()).isEqualTo("grpc.defaultHintTtlMs");
        assertThat(ttl.getMessage()).contains("above grpc.maxHintTtlMs 60000");
        ConfigException message = failure(Optional.empty(), Map.of(), Map.of("grpc.maxTokensPerQuery", "1000000"));
        assertThat(message.key()).isEqualTo("grpc.maxMessageBytes");
        assertThat(message.getMessage()).contains("cannot hold a prompt of grpc.maxTokensPerQuery 1000000 tokens");
        BrokerConfig raised = load(Optional.empty(), Map.of("KVBROKER_GRPC_MAX_MESSAGE_BYTES", "6000000"),
                Map.of("grpc.maxTokensPerQuery", "1000000", "grpc.port", "0"));
        assertThat(raised.get(Settings.GRPC_MAX_TOKENS_PER_QUERY)).isEqualTo(1_000_000);
        assertThat(raised.get(Settings.GRPC_PORT)).isZero();
    }

    @Test
    void anIndexBudgetTheHeapCannotHoldNamesTheKeyAndTheHeapItWouldNeed() throws Exception {
        long heap64 = 64L << 20;
        Settings.checkHeap(BrokerConfig.defaults(), heap64);
        Settings.checkHeap(load(Optional.empty(), Map.of(), Map.of("index.budgetMb", "10", "index.budgetShares", "8")),
                heap64);
        BrokerConfig eleven = load(Optional.empty(), Map.of(), Map.of("index.budgetMb", "11",
                "index.budgetShares", "8"));
        assertThatThrownBy(() -> Settings.checkHeap(eleven, heap64)).isInstanceOf(ConfigException.class)
                .hasMessageStartingWith("index.budgetMb: 11 MiB does not fit a heap of 64 MiB")
                .hasMessageContaining("at most 10 here").hasMessageContaining("at least 65 MiB of heap");
        // The shipped 2 GiB container: a 1.5 GiB heap.
        Settings.checkHeap(load(Optional.empty(), Map.of(), Map.of("index.budgetMb", "501")), 1536L << 20);
        BrokerConfig over = load(Optional.empty(), Map.of(), Map.of("index.budgetMb", "502"));
        assertThatThrownBy(() -> Settings.checkHeap(over, 1536L << 20)).hasMessageContaining("at most 501 here");
    }

    @Test
    void unknownEnvironmentVariablesOnlyWarnAndKubernetesServiceLinksAreQuiet() throws Exception {
        BrokerConfig config = load(Optional.empty(), Map.of("KVBROKER_LOG_LEVL", "debug",
                "KVBROKER_SERVICE_HOST", "10.0.0.1", "KVBROKER_PORT_50051_TCP", "tcp://10.0.0.1:50051"), Map.of());
        assertThat(config.warnings()).containsExactly(
                "environment variable KVBROKER_LOG_LEVL is not a kvbroker setting; ignored");
    }

    @Test
    void unreadableOrMalformedFilesAreNamed() throws Exception {
        assertThat(failure(Optional.of(dir.resolve("missing.yaml")), Map.of(), Map.of()).getMessage())
                .contains("no such file");
        assertThat(failure(Optional.of(yaml("log: [unclosed\n")), Map.of(), Map.of()).getMessage())
                .contains("is not valid YAML");
        assertThat(failure(Optional.of(yaml("- a\n- b\n")), Map.of(), Map.of()).getMessage())
                .contains("must hold a map");
    }

    /**
     * {@code --config /dev/null} said "no such file" (it is no regular file). An empty file, a file of comments and
     * /dev/null mean every default; a directory is named as one.
     */
    @Test
    void anEmptyConfigFileOrDevNullMeansEveryDefaultAndADirectoryIsNamedAsOne() throws Exception {
        for (String text : new String[] {null, "", "# nothing set here\n"}) {
            Path empty = text == null ? Path.of("/dev/null") : yaml(text);
            BrokerConfig config = load(Optional.of(empty), Map.of(), Map.of());
            assertThat(config.get(Settings.GRPC_PORT)).as(String.valueOf(text)).isEqualTo(50_051);
            assertThat(config.source(Settings.GRPC_PORT)).as(String.valueOf(text)).isEqualTo("default");
        }
        assertThat(failure(Optional.of(dir), Map.of(), Map.of()).getMessage())
                .contains(dir + " is a directory; give the YAML file in it").doesNotContain("no such file");
    }

    @Test
    void staticEnginesExpandDataParallelRanksWithPortOffsets() throws Exception {
        Path file = yaml("""
                engines:
                  static:
                    - pod: vllm-0
                      model: Qwen/Qwen3-0.6B
                      endpoint: tcp://10.0.0.7:5557
                      replayEndpoint: tcp://10.0.0.7:6557
                      topic: kv@10.0.0.7@Qwen/Qwen3-0.6B
                      dataParallelSize: 2
                    - pod: vllm-1
                      model: Qwen/Qwen3-0.6B
                      endpoint: tcp://10.0.0.8:5557
                """);
        List<EngineSpec> engines = load(Optional.of(file), Map.of(), Map.of()).get(Settings.ENGINES_STATIC);
        assertThat(engines).hasSize(3);
        assertThat(engines.get(1).key()).isEqualTo(new EngineKey("vllm-0", 1));
        assertThat(engines.get(1).endpoint().toString()).isEqualTo("tcp://10.0.0.7:5558");
        assertThat(engines.get(1).replayEndpoint().orElseThrow().toString()).isEqualTo("tcp://10.0.0.7:6558");
        assertThat(engines.get(2).replayEndpoint()).isEmpty();
        assertThat(engines.get(2).topic()).isEmpty();
    }

    @Test
    void staticEnginesFromTheEnvironmentAreYamlFlow() throws Exception {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("KVBROKER_ENGINES_STATIC", "[{pod: a, model: m, endpoint: 'tcp://127.0.0.1:5557'}]");
        assertThat(load(Optional.empty(), env, Map.of()).get(Settings.ENGINES_STATIC)).hasSize(1);
    }

    @Test
    void badEnginesNameTheEntryAndField() {
        assertThat(failureOfEngines("[{pod: a, model: m}]").key()).isEqualTo("engines.static[0].endpoint");
        assertThat(failureOfEngines("[{pod: a, model: m, endpoint: 'tcp://*:5557'}]").getMessage())
                .contains("bind address");
        assertThat(failureOfEngines("[{pod: a, model: m, endpoint: 'tcp://h:99999'}]").key())
                .isEqualTo("engines.static[0].endpoint");
        assertThat(failureOfEngines("[{pod: a, model: m, endpoint: 'tcp://h:1', replay: 'tcp://h:2'}]").key())
                .isEqualTo("engines.static[0].replay");
        assertThat(failureOfEngines("[{pod: a, model: m, endpoint: 'tcp://h:1'}, {pod: a, model: m,"
                + " endpoint: 'tcp://h:2'}]").key()).isEqualTo("engines.static[1].pod");
        assertThat(failureOfEngines("[{pod: a, model: m, endpoint: 'tcp://h:1', dataParallelSize: 0}]").key())
                .isEqualTo("engines.static[0].dataParallelSize");
        assertThat(failureOfEngines("[{pod: a, model: m, endpoint: 'tcp://h:1', replayEndpoint: 'tcp://h:2',"
                + " dataParallelSize: 2}]").key()).isEqualTo("engines.static[0].endpoint");
        assertThat(failureOfEngines("{pod: a}").key()).isEqualTo("engines.static");
        assertThat(failureOfEngines("[{pod: a").key()).isEqualTo("engines.static");
    }

    @Test
    void listenPortRangesMustNotOverlap() throws Exception {
        ConfigException overlap = failure(Optional.empty(), Map.of(), Map.of("ingest.listen.port", "5557",
                "ingest.listen.maxRanks", "4", "ingest.listen.replayPort", "5558"));
        assertThat(overlap.key()).isEqualTo("ingest.listen.replayPort");
        assertThat(overlap.getMessage()).contains("overlap the listening ports 5557..5560");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("ingest.listen.port", "65534",
                "ingest.listen.maxRanks", "4")).key()).isEqualTo("ingest.listen.port");
        BrokerConfig apart = load(Optional.empty(), Map.of(), Map.of("ingest.listen.port", "5557",
                "ingest.listen.maxRanks", "4", "ingest.listen.replayPort", "5561"));
        assertThat(apart.get(Settings.INGEST_LISTEN_REPLAY_PORT)).isEqualTo(5561);
    }

    @Test
    void tlsFilesMustComeInWorkingCombinationsAndBeReadable() throws Exception {
        Path cert = Files.writeString(dir.resolve("server.pem"), "x");
        Path key = Files.writeString(dir.resolve("server.key"), "x");
        String missing = dir.resolve("absent.pem").toString();
        assertThat(failure(Optional.empty(), Map.of(), Map.of("grpc.tls.certFile", cert.toString())).key())
                .isEqualTo("grpc.tls.keyFile");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("grpc.tls.keyFile", key.toString())).key())
                .isEqualTo("grpc.tls.certFile");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("grpc.tls.clientCaFile", cert.toString())).key())
                .isEqualTo("grpc.tls.clientCaFile");
        ConfigException unreadable = failure(Optional.empty(), Map.of(), Map.of("grpc.tls.certFile", cert.toString(),
                "grpc.tls.keyFile", missing));
        assertThat(unreadable.key()).isEqualTo("grpc.tls.keyFile");
        assertThat(unreadable.getMessage()).contains("absent.pem' is not a readable file");
        assertThat(failure(Optional.empty(), Map.of(), Map.of("grpc.auth.tokensFile", missing)).key())
                .isEqualTo("grpc.auth.tokensFile");
        BrokerConfig tls = load(Optional.empty(), Map.of("KVBROKER_GRPC_TLS_CERT_FILE", cert.toString()),
                Map.of("grpc.tls.keyFile", key.toString(), "grpc.tls.clientCaFile", cert.toString()));
        assertThat(tls.get(Settings.GRPC_TLS_CLIENT_CA_FILE)).isEqualTo(cert.toString());
    }

    @Test
    void listenAllowListsParseAndNameTheBadEntry() throws Exception {
        BrokerConfig config = load(Optional.empty(), Map.of(), Map.of("ingest.listen.allowedTopics",
                "['kv@*@m', exact]", "ingest.listen.allowedAddresses", "[10.0.0.0/8, 127.0.0.1, 'fd00::/8']"));
        assertThat(config.get(Settings.INGEST_LISTEN_ALLOWED_TOPICS)).containsExactly("kv@*@m", "exact");
        assertThat(config.get(Settings.INGEST_LISTEN_ALLOWED_ADDRESSES)).extracting(Object::toString)
                .containsExactly("10.0.0.0/8", "127.0.0.1", "fd00::/8");
        for (String bad : List.of("[10.0.0.0/33]", "[engine.example.com]", "[300.1.1.1]", "[10.0.0.0/x]")) {
            assertThat(failure(Optional.empty(), Map.of(), Map.of("ingest.listen.allowedAddresses", bad)).key())
                    .as(bad).isEqualTo("ingest.listen.allowedAddresses[0]");
        }
    }

    private static ConfigException failureOfEngines(String yamlFlow) {
        return failure(Optional.empty(), Map.of(), Map.of("engines.static", yamlFlow));
    }
}
