package io.kvbroker.config;

import io.kvbroker.discovery.DnsService;
import io.kvbroker.engine.EngineSpec;
import io.kvbroker.index.IndexBudget;
import io.kvbroker.net.AddressBlock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Every configuration key kvbroker reads, with its default and meaning: the single source of the configuration
 * table in the README and of {@code kvbroker config --describe}.
 */
public final class Settings {
    private Settings() {
    }

    public static final Setting<String> BROKER_NAME = new Setting<>("broker.name", "string", "", "\"\"",
            "Name of this replica in logs; empty means the host name (the pod name in a StatefulSet).", false,
            ValueParsers.text(true));

    public static final Setting<Integer> SHUTDOWN_DRAIN_TIMEOUT_MS = new Setting<>("shutdown.drainTimeoutMs",
            "integer, ms", 10_000, "10000",
            "On SIGTERM, how long components get in all to drain and close before the process exits anyway.",
            false, ValueParsers.intRange(0, 600_000));

    public static final Setting<String> LOG_LEVEL = new Setting<>("log.level",
            "one of error, warn, info, debug, trace", "info", "info",
            "Level of kvbroker's own loggers (libraries stay at warn).", false,
            ValueParsers.oneOf(List.of("error", "warn", "info", "debug", "trace")));

    public static final Setting<String> LOG_FORMAT = new Setting<>("log.format", "plain or json", "plain", "plain",
            "Log line format on standard output: plain text, or one JSON object per line for log collectors.",
            false, ValueParsers.oneOf(List.of("plain", "json")));

    public static final Setting<Integer> LOG_STATUS_INTERVAL_MS = new Setting<>("log.statusIntervalMs",
            "integer, ms", 10_000, "10000",
            "How often one status line (engines by state, ingest rates, fault counters, index size, a sample"
                    + " Score when simulating) is logged.", false,
            ValueParsers.intRange(100, 3_600_000));

    public static final Setting<List<EngineSpec>> ENGINES_STATIC = new Setting<>("engines.static",
            "list of engines", List.of(), "[]",
            "Engines to subscribe to: each with pod, model, endpoint (the engine's PUB, tcp://host:port), and"
                    + " optionally replayEndpoint, topic and dataParallelSize (ranks 0..n-1 at port+rank).",
            true, new StaticEnginesParser());

    public static final Setting<Integer> DISCOVERY_REMOVE_GRACE_MS = new Setting<>("discovery.removeGraceMs",
            "integer, ms", 30_000, "30000",
            "How long a discovered engine may be missing (pod gone or not Ready, address not resolved) before it is"
                    + " removed and its blocks cleared; back within this time, it carries on where it was.", false,
            ValueParsers.intRange(0, 86_400_000));

    public static final Setting<List<DnsService>> DISCOVERY_DNS_SERVICES = new Setting<>("discovery.dns.services",
            "list of services", List.of(), "[]",
            "Headless Services whose A records are engines: each with host, model, and optionally port (default"
                    + " 5557), replayPort, dataParallelSize and topic ({podIP} and {model} are filled in).", true,
            new DnsServicesParser());

    public static final Setting<Integer> DISCOVERY_DNS_INTERVAL_MS = new Setting<>("discovery.dns.intervalMs",
            "integer, ms", 10_000, "10000",
            "How often the DNS services are resolved again (the JVM caches answers for 30 s unless"
                    + " -Dsun.net.inetaddr.ttl says otherwise).", false, ValueParsers.intRange(100, 3_600_000));

    public static final Setting<Boolean> DISCOVERY_KUBERNETES_ENABLED = new Setting<>(
            "discovery.kubernetes.enabled", "true or false", false, "false",
            "Discover engines from the Kubernetes API: Running and Ready pods matching the label selector, read"
                    + " through list and watch (docs/operations.md lists the pod annotations).", false,
            ValueParsers.bool());

    public static final Setting<List<String>> DISCOVERY_KUBERNETES_NAMESPACES = new Setting<>(
            "discovery.kubernetes.namespaces", "list of strings", List.of(), "[]",
            "Namespaces to watch for engine pods; empty means kvbroker's own namespace.", true,
            ValueParsers.textList());

    public static final Setting<String> DISCOVERY_KUBERNETES_LABEL_SELECTOR = new Setting<>(
            "discovery.kubernetes.labelSelector", "string", "kvbroker.io/kv-events=enabled",
            "kvbroker.io/kv-events=enabled", "Label selector of the engine pods.", false, ValueParsers.text(false));

    public static final Setting<Integer> METRICS_PORT = new Setting<>("metrics.port", "integer", 9464, "9464",
            "HTTP port of the Prometheus metrics (/metrics) and the health probes (/-/healthy, /-/ready); 0 turns"
                    + " the HTTP server off.", false, ValueParsers.intRange(0, 65_535));

    public static final Setting<String> METRICS_HOST = new Setting<>("metrics.host", "string", "0.0.0.0",
            "0.0.0.0", "The address the metrics HTTP server binds to.", false, ValueParsers.text(false));

    public static final Setting<Integer> INGEST_REPLAY_TIMEOUT_MS = new Setting<>("ingest.replayTimeoutMs",
            "integer, ms", 1000, "1000",
            "How long a replay may go without a reply before it counts as cut short and is asked again.", false,
            ValueParsers.intRange(10, 600_000));

    public static final Setting<Integer> INGEST_REPLAY_MAX_ATTEMPTS = new Setting<>("ingest.replayMaxAttempts",
            "integer", 3, "3",
            "Replay requests in a row that bring nothing new before the missing batches count as lost (the engine is"
                    + " voided).", false, ValueParsers.intRange(1, 100));

    public static final Setting<Integer> INGEST_REPLAY_CONNECT_WAIT_MS = new Setting<>(
            "ingest.replayConnectWaitMs", "integer, ms", 10_000, "10000",
            "How long a replay waits for its socket to reconnect (an engine coming back) before silence counts as"
                    + " tries; longer than the reconnect backoff (ingest.reconnectIntervalMaxMs).", false,
            ValueParsers.intRange(0, 600_000));

    public static final Setting<Integer> INGEST_REPLAY_MIN_INTERVAL_MS = new Setting<>(
            "ingest.replayMinIntervalMs", "integer, ms", 50, "50",
            "The least time between two replay requests to one engine; a request due sooner waits. Bounds what an"
                    + " engine whose replies never satisfy can cost (20 requests a second at 50).", false,
            ValueParsers.intRange(0, 60_000));

    public static final Setting<Integer> INGEST_SILENT_AFTER_MS = new Setting<>("ingest.silentAfterMs",
            "integer, ms", 30_000, "30000",
            "An engine that sends nothing for this long is reported silent (its blocks are kept) and, with a replay"
                    + " endpoint, asked once from its cursor for batches lost just before it fell quiet.", false,
            ValueParsers.intRange(100, 86_400_000));

    public static final Setting<Integer> INGEST_MAX_PENDING_BATCHES = new Setting<>("ingest.maxPendingBatches",
            "integer", 10_000, "10000",
            "Live batches held per engine while its replay runs; beyond this they are dropped and replayed later.",
            false, ValueParsers.intRange(16, 10_000_000));

    public static final Setting<Integer> INGEST_RECEIVE_HIGH_WATER_MARK = new Setting<>(
            "ingest.receiveHighWaterMark", "integer, messages", 100_000, "100000",
            "ZeroMQ receive high-water mark of each engine's SUB socket (0: unlimited). At the mark the SUB stops"
                    + " reading, the kernel buffers fill, and the engine's publisher drops; the lost batches come back"
                    + " as gaps replayed from the engine's buffer.", false, ValueParsers.intRange(0, 100_000_000));

    public static final Setting<Integer> INGEST_MAX_MESSAGE_BYTES = new Setting<>("ingest.maxMessageBytes",
            "integer, bytes", 33_554_432, "33554432",
            "Largest ZeroMQ frame taken from an engine (live, replay or listening socket); ZeroMQ drops the"
                    + " connection of a peer that sends a larger one, counted as a disconnect. The default, 32 MiB, is"
                    + " about twice one scheduler step of 1,000,000 tokens (no vLLM batches more per step): 62,500"
                    + " blocks of 16 tokens at about 300 bytes each (16 tokens of 5 bytes, a 34-byte digest, extra"
                    + " keys, one eviction of 90 bytes) is 19 MB.", false,
            ValueParsers.intRange(65_536, 1_073_741_824));

    public static final Setting<Integer> INGEST_RECONNECT_INTERVAL_MS = new Setting<>("ingest.reconnectIntervalMs",
            "integer, ms", 100, "100",
            "How soon a lost engine connection is tried again (ZeroMQ doubles it up to"
                    + " ingest.reconnectIntervalMaxMs).", false, ValueParsers.intRange(10, 60_000));

    public static final Setting<Integer> INGEST_RECONNECT_INTERVAL_MAX_MS = new Setting<>(
            "ingest.reconnectIntervalMaxMs", "integer, ms", 500, "500",
            "The longest wait between tries to reach a lost engine. Without a replay endpoint, batches an engine"
                    + " publishes before kvbroker is connected again are lost for good: a restarted vLLM binds its"
                    + " port about a second before its first batch, so this must stay well under a second.", false,
            ValueParsers.intRange(10, 60_000));

    public static final Setting<Integer> INGEST_LISTEN_PORT = new Setting<>("ingest.listen.port", "integer", 0, "0",
            "Listen mode: engines whose endpoint has no '*' connect to kvbroker, rank r to this port + r, so kvbroker"
                    + " binds port..port+maxRanks-1 and tells engines apart by (topic, rank). 0 turns listening off.",
            false, ValueParsers.intRange(0, 65_535));

    public static final Setting<String> INGEST_LISTEN_HOST = new Setting<>("ingest.listen.host", "string",
            "0.0.0.0", "0.0.0.0", "Listen mode: the address kvbroker binds its listening SUB sockets to.", false,
            ValueParsers.text(false));

    public static final Setting<Integer> INGEST_LISTEN_MAX_RANKS = new Setting<>("ingest.listen.maxRanks",
            "integer", 8, "8", "Listen mode: data-parallel ranks per pod, one listening port each.", false,
            ValueParsers.intRange(1, 1_024));

    public static final Setting<Integer> INGEST_LISTEN_REPLAY_PORT = new Setting<>("ingest.listen.replayPort",
            "integer", 0, "0",
            "Listen mode: the engines' replay base port; rank r of the pod named in topic kv@HOST@MODEL replays at"
                    + " tcp://HOST:replayPort+r. 0: listening engines have no replay.", false,
            ValueParsers.intRange(0, 65_535));

    public static final Setting<List<String>> INGEST_LISTEN_ALLOWED_TOPICS = new Setting<>(
            "ingest.listen.allowedTopics", "list of strings", List.of(), "[]",
            "Listen mode: topics that may connect, exact or with '*' for any run of characters (kv@*@my-model);"
                    + " engines configured or discovered with a topic are allowed too. A message under another topic"
                    + " is counted (unknown_topic) and dropped. Empty: any non-empty topic.", true,
            ValueParsers.textList());

    public static final Setting<List<AddressBlock>> INGEST_LISTEN_ALLOWED_ADDRESSES = new Setting<>(
            "ingest.listen.allowedAddresses", "list of strings", List.of(), "[]",
            "Listen mode: IP addresses or CIDR blocks (10.0.0.0/8) engines may connect from; a message from elsewhere"
                    + " is counted (unknown_address) and dropped. Empty: any address.", true,
            ValueParsers.addressBlocks());

    public static final Setting<Integer> INDEX_GRANULARITY = new Setting<>("index.granularity", "integer, tokens",
            16, "16", "Tokens per content-key chunk (vLLM's hash block size); engine blocks of k times this span k"
                    + " chunks. Gateways must compute keys with the same value.", false,
            ValueParsers.intRange(1, 4096));

    public static final Setting<Double> INDEX_WEIGHT_GPU = new Setting<>("index.weights.gpu", "number", 1.0, "1.0",
            "Score weight of a matched token held on GPU.", false, ValueParsers.decimal(0, 1000));

    public static final Setting<Double> INDEX_WEIGHT_CPU = new Setting<>("index.weights.cpu", "number", 0.8, "0.8",
            "Score weight of a matched token offloaded to CPU memory.", false, ValueParsers.decimal(0, 1000));

    public static final Setting<Double> INDEX_WEIGHT_STORAGE = new Setting<>("index.weights.storage", "number", 0.5,
            "0.5", "Score weight of a matched token on a storage tier (unknown tiers get 0.8 of this).", false,
            ValueParsers.decimal(0, 1000));

    public static final Setting<Integer> INDEX_BUDGET_MB = new Setting<>("index.budgetMb", "integer, MiB", 0, "0",
            "Heap the index may use for blocks, split in index.budgetShares equal per-engine quotas (64 bytes an"
                    + " indexed block). An engine over its quota loses chain tails: storage-only first, then CPU,"
                    + " then GPU; it is reported truncated. Start-up refuses a budget above a third of the heap less"
                    + " 32 MiB (allowing the index three times its budget at its peak). 0: no budget.", false,
            ValueParsers.intRange(0, 4_194_304));

    public static final Setting<Integer> INDEX_BUDGET_SHARES = new Setting<>("index.budgetShares", "integer", 1000,
            "1000", "Engines the budget is planned for: each engine's quota is budgetMb / budgetShares, fixed, so"
                    + " evictions depend only on each engine's own stream and replicas agree.", false,
            ValueParsers.intRange(1, 1_000_000));

    public static final Setting<String> JOURNAL_DIR = new Setting<>("journal.dir", "path", "kvbroker-data",
            "kvbroker-data", "Folder of the RocksDB journal (replay log, engine cursors, index checkpoints), so a"
                    + " restart loses nothing. Empty: no journal; a restart starts cold.", false,
            ValueParsers.text(true));

    public static final Setting<String> JOURNAL_SYNC = new Setting<>("journal.sync", "batch, interval or none",
            "interval", "interval", "When the journal's write-ahead log reaches the disk: batch (fsync per batch),"
                    + " interval (fsync every syncIntervalMs; a machine crash loses at most that window, a process"
                    + " crash nothing) or none (left to the OS). What is lost is replayed from the engines.", false,
            ValueParsers.oneOf(List.of("batch", "interval", "none")));

    public static final Setting<Integer> JOURNAL_SYNC_INTERVAL_MS = new Setting<>("journal.syncIntervalMs",
            "integer, ms", 100, "100", "With journal.sync=interval, how often the write-ahead log is fsynced.",
            false, ValueParsers.intRange(1, 60_000));

    public static final Setting<Integer> JOURNAL_RETENTION_MAX_MB = new Setting<>("journal.retention.maxMb",
            "integer, MiB", 4096, "4096", "Replay log size kept for resuming change streams; the oldest records go"
                    + " first (never past an engine's last checkpoint). 0: no size bound.", false,
            ValueParsers.intRange(0, 16_777_216));

    public static final Setting<Integer> JOURNAL_RETENTION_MAX_AGE_SECONDS = new Setting<>(
            "journal.retention.maxAgeSeconds", "integer, s", 86_400, "86400", "Replay log age kept. 0: no age"
                    + " bound.", false, ValueParsers.intRange(0, 365 * 86_400));

    public static final Setting<Integer> JOURNAL_RETENTION_MAX_BATCHES = new Setting<>(
            "journal.retention.maxBatches", "integer", 0, "0", "Replay log records (one per batch) kept. 0: no count"
                    + " bound.", false, ValueParsers.intRange(0, Integer.MAX_VALUE));

    public static final Setting<Integer> JOURNAL_CHECKPOINT_EVERY_BATCHES = new Setting<>(
            "journal.checkpoint.everyBatches", "integer", 5_000, "5000", "An engine's index part is checkpointed"
                    + " after this many of its batches (or checkpoint.intervalMs), one engine at a time between"
                    + " batches; recovery replays the log after each checkpoint.", false,
            ValueParsers.intRange(1, 100_000_000));

    public static final Setting<Integer> JOURNAL_CHECKPOINT_INTERVAL_MS = new Setting<>(
            "journal.checkpoint.intervalMs", "integer, ms", 60_000, "60000", "An engine with batches since its last"
                    + " checkpoint is checkpointed at least this often.", false,
            ValueParsers.intRange(100, 86_400_000));

    public static final Setting<Boolean> JOURNAL_START_FRESH = new Setting<>("journal.startFresh", "boolean", false,
            "false", "Delete the journal at start-up and rebuild from the engines: the way out of a journal from"
                    + " another release or a damaged one.", false, ValueParsers.bool());

    public static final Setting<Integer> SIMULATE_ENGINES = new Setting<>("simulate.engines", "integer", 0, "0",
            "Simulated vLLM engines to run beside the daemon on loopback and ingest (serve --simulate N); 0 for"
                    + " none.", false, ValueParsers.intRange(0, 2_000));

    public static final Setting<Integer> SIMULATE_BASE_PORT = new Setting<>("simulate.basePort", "integer", 16_000,
            "16000", "First port of the simulated engines: engine i publishes on base+2i and replays on base+2i+1.",
            false, ValueParsers.intRange(1024, 60_000));

    public static final Setting<Integer> SIMULATE_STEPS_PER_SECOND = new Setting<>("simulate.stepsPerSecond",
            "integer", 20, "20", "Batches each simulated engine publishes per second.", false,
            ValueParsers.intRange(1, 10_000));

    public static final Setting<Boolean> SIMULATE_REPLAY = new Setting<>("simulate.replay", "boolean", true, "true",
            "Whether the simulated engines are ingested with their replay endpoints; false runs them as vLLM runs by"
                    + " default, without one (restarts and gaps are then found from the live stream alone).", false,
            ValueParsers.bool());

    public static final Setting<Integer> GRPC_PORT = new Setting<>("grpc.port", "integer", 50_051, "50051",
            "Port of the gRPC query API (KvIndexService, health, reflection); 0 picks a free port and logs it.", false,
            ValueParsers.intRange(0, 65_535));

    public static final Setting<String> GRPC_HOST = new Setting<>("grpc.host", "string", "0.0.0.0", "0.0.0.0",
            "Address the gRPC server binds to.", false, ValueParsers.text(false));

    public static final Setting<Integer> GRPC_MAX_TOKENS_PER_QUERY = new Setting<>("grpc.maxTokensPerQuery",
            "integer, tokens", 131_072, "131072",
            "Largest prompt a Score or Hint may carry, in tokens (content keys: this divided by index.granularity);"
                    + " larger requests get INVALID_ARGUMENT.", false, ValueParsers.intRange(1, 16_777_216));

    public static final Setting<Integer> GRPC_MAX_KEYS_PER_LOOKUP = new Setting<>("grpc.maxKeysPerLookup",
            "integer", 8_192, "8192", "Most content keys or block hashes one Lookup may carry.", false,
            ValueParsers.intRange(1, 1_048_576));

    public static final Setting<Integer> GRPC_MAX_MESSAGE_BYTES = new Setting<>("grpc.maxMessageBytes",
            "integer, bytes", 4_194_304, "4194304",
            "Largest gRPC request accepted (RESOURCE_EXHAUSTED beyond it); must hold a prompt of"
                    + " grpc.maxTokensPerQuery tokens.", false, ValueParsers.intRange(1_024, 1_073_741_824));

    public static final Setting<Integer> GRPC_MAX_HINTS_PER_ENGINE = new Setting<>("grpc.maxHintsPerEngine",
            "integer, chunks", 100_000, "100000",
            "Most hinted chunks pending on one engine at a time; a Hint that would pass it gets RESOURCE_EXHAUSTED.",
            false, ValueParsers.intRange(1, 100_000_000));

    public static final Setting<Integer> GRPC_DEFAULT_HINT_TTL_MS = new Setting<>("grpc.defaultHintTtlMs",
            "integer, ms", 5_000, "5000",
            "How long a Hint that gives no ttl_ms holds when the engine does not confirm its blocks.", false,
            ValueParsers.intRange(1, 3_600_000));

    public static final Setting<Integer> GRPC_MAX_HINT_TTL_MS = new Setting<>("grpc.maxHintTtlMs", "integer, ms",
            60_000, "60000", "Longest ttl_ms a Hint may ask for; longer gets INVALID_ARGUMENT.", false,
            ValueParsers.intRange(1, 3_600_000));

    public static final Setting<String> GRPC_TLS_CERT_FILE = new Setting<>("grpc.tls.certFile", "path", "", "\"\"",
            "PEM certificate chain of the gRPC server; set (with grpc.tls.keyFile) for TLS. Empty: plain text, logged"
                    + " as a warning.", false, ValueParsers.text(true));

    public static final Setting<String> GRPC_TLS_KEY_FILE = new Setting<>("grpc.tls.keyFile", "path", "", "\"\"",
            "PEM private key (PKCS#8, BEGIN PRIVATE KEY) of grpc.tls.certFile.", false, ValueParsers.text(true));

    public static final Setting<String> GRPC_TLS_CLIENT_CA_FILE = new Setting<>("grpc.tls.clientCaFile", "path", "",
            "\"\"", "PEM CA certificates; set: mutual TLS, every client must present a certificate they signed."
                    + " Empty: no client certificate asked for.", false, ValueParsers.text(true));

    public static final Setting<Integer> GRPC_TLS_RELOAD_INTERVAL_MS = new Setting<>("grpc.tls.reloadIntervalMs",
            "integer, ms", 60_000, "60000", "How often the certificate, key, client CA and tokens files are checked"
                    + " for changes (modification time or size); changed files apply to new connections without a"
                    + " restart.", false, ValueParsers.intRange(100, 86_400_000));

    public static final Setting<String> GRPC_AUTH_TOKENS_FILE = new Setting<>("grpc.auth.tokensFile", "path", "",
            "\"\"", "File of bearer tokens, one a line ('#' comments); set: every call but the health service needs"
                    + " 'authorization: Bearer TOKEN' with one of them, else UNAUTHENTICATED. Empty: no token check.",
            false, ValueParsers.text(true));

    public static final Setting<Integer> WATCH_BUFFER_BATCHES = new Setting<>("watch.bufferBatches",
            "integer, batches", 65_536, "65536", "Applied batches kept in memory for Watch streams: a watcher further"
                    + " behind than this is ended with ABORTED and resumes from its token (from the journal, or with"
                    + " snapshots of the engines whose batches are gone). Rounded up to a power of two.", false,
            ValueParsers.intRange(1_024, 16_777_216));

    public static final Setting<Integer> WATCH_THREADS = new Setting<>("watch.threads", "integer", 2, "2",
            "Threads sending Watch streams (each serves its share of the watchers).", false,
            ValueParsers.intRange(1, 64));

    public static final Setting<Integer> WATCH_MAX_WATCHERS = new Setting<>("watch.maxWatchers", "integer", 1_024,
            "1024", "Watch streams open at once; more get RESOURCE_EXHAUSTED.", false,
            ValueParsers.intRange(1, 100_000));

    /** All settings, in the order of the configuration table. */
    public static final List<Setting<?>> ALL = List.of(BROKER_NAME, SHUTDOWN_DRAIN_TIMEOUT_MS, LOG_LEVEL,
            LOG_FORMAT, LOG_STATUS_INTERVAL_MS, ENGINES_STATIC, DISCOVERY_REMOVE_GRACE_MS, DISCOVERY_DNS_SERVICES,
            DISCOVERY_DNS_INTERVAL_MS, DISCOVERY_KUBERNETES_ENABLED, DISCOVERY_KUBERNETES_NAMESPACES,
            DISCOVERY_KUBERNETES_LABEL_SELECTOR, METRICS_PORT, METRICS_HOST, INGEST_REPLAY_TIMEOUT_MS,
            INGEST_REPLAY_MAX_ATTEMPTS, INGEST_REPLAY_CONNECT_WAIT_MS, INGEST_REPLAY_MIN_INTERVAL_MS,
            INGEST_SILENT_AFTER_MS, INGEST_MAX_PENDING_BATCHES, INGEST_RECEIVE_HIGH_WATER_MARK,
            INGEST_MAX_MESSAGE_BYTES, INGEST_RECONNECT_INTERVAL_MS, INGEST_RECONNECT_INTERVAL_MAX_MS,
            INGEST_LISTEN_PORT, INGEST_LISTEN_HOST, INGEST_LISTEN_MAX_RANKS, INGEST_LISTEN_REPLAY_PORT,
            INGEST_LISTEN_ALLOWED_TOPICS, INGEST_LISTEN_ALLOWED_ADDRESSES,
            INDEX_GRANULARITY, INDEX_WEIGHT_GPU, INDEX_WEIGHT_CPU, INDEX_WEIGHT_STORAGE, INDEX_BUDGET_MB,
            INDEX_BUDGET_SHARES, JOURNAL_DIR, JOURNAL_SYNC, JOURNAL_SYNC_INTERVAL_MS, JOURNAL_RETENTION_MAX_MB,
            JOURNAL_RETENTION_MAX_AGE_SECONDS, JOURNAL_RETENTION_MAX_BATCHES, JOURNAL_CHECKPOINT_EVERY_BATCHES,
            JOURNAL_CHECKPOINT_INTERVAL_MS, JOURNAL_START_FRESH,
            GRPC_PORT, GRPC_HOST, GRPC_MAX_TOKENS_PER_QUERY, GRPC_MAX_KEYS_PER_LOOKUP, GRPC_MAX_MESSAGE_BYTES,
            GRPC_MAX_HINTS_PER_ENGINE, GRPC_DEFAULT_HINT_TTL_MS, GRPC_MAX_HINT_TTL_MS, GRPC_TLS_CERT_FILE,
            GRPC_TLS_KEY_FILE, GRPC_TLS_CLIENT_CA_FILE, GRPC_TLS_RELOAD_INTERVAL_MS, GRPC_AUTH_TOKENS_FILE,
            WATCH_BUFFER_BATCHES, WATCH_THREADS, WATCH_MAX_WATCHERS,
            SIMULATE_ENGINES, SIMULATE_BASE_PORT, SIMULATE_STEPS_PER_SECOND, SIMULATE_REPLAY);

    static final Map<String, Setting<?>> BY_KEY = ALL.stream()
            .collect(Collectors.toUnmodifiableMap(Setting::key, Function.identity()));

    /** Checks that need several keys at once; the message names the key to change. */
    static void checkTogether(Map<Setting<?>, Object> values) throws ConfigException {
        int listen = (Integer) values.get(INGEST_LISTEN_PORT);
        int replay = (Integer) values.get(INGEST_LISTEN_REPLAY_PORT);
        int ranks = (Integer) values.get(INGEST_LISTEN_MAX_RANKS);
        if (listen > 0 && listen + ranks - 1 > 65_535) {
            throw new ConfigException(INGEST_LISTEN_PORT.key(), "port " + listen + " + maxRanks " + ranks
                    + " runs past 65535");
        }
        double gpu = (Double) values.get(INDEX_WEIGHT_GPU);
        double cpu = (Double) values.get(INDEX_WEIGHT_CPU);
        double storage = (Double) values.get(INDEX_WEIGHT_STORAGE);
        if (!(gpu >= cpu && cpu >= storage)) {
            throw new ConfigException(INDEX_WEIGHT_CPU.key(), "weights must keep GPU >= CPU >= storage, were " + gpu
                    + ", " + cpu + ", " + storage);
        }
        int budgetMb = (Integer) values.get(INDEX_BUDGET_MB);
        int shares = (Integer) values.get(INDEX_BUDGET_SHARES);
        if (budgetMb > 0 && IndexBudget.of(budgetMb, shares).quotaBlocks() < IndexBudget.MIN_QUOTA_BLOCKS) {
            throw new ConfigException(INDEX_BUDGET_MB.key(), budgetMb + " MiB over " + shares + " shares gives each"
                    + " engine fewer than " + IndexBudget.MIN_QUOTA_BLOCKS + " blocks; raise it to at least "
                    + (IndexBudget.MIN_QUOTA_BLOCKS * IndexBudget.BYTES_PER_BLOCK * shares + (1 << 20) - 1 >> 20)
                    + " or lower index.budgetShares");
        }
        int metrics = (Integer) values.get(METRICS_PORT);
        if (metrics > 0 && listen > 0 && metrics >= listen && metrics < listen + ranks) {
            throw new ConfigException(METRICS_PORT.key(), "port " + metrics + " is one of the listening ports "
                    + listen + ".." + (listen + ranks - 1));
        }
        int defaultTtl = (Integer) values.get(GRPC_DEFAULT_HINT_TTL_MS);
        int maxTtl = (Integer) values.get(GRPC_MAX_HINT_TTL_MS);
        if (defaultTtl > maxTtl) {
            throw new ConfigException(GRPC_DEFAULT_HINT_TTL_MS.key(), defaultTtl + " is above grpc.maxHintTtlMs "
                    + maxTtl);
        }
        long tokens = (Integer) values.get(GRPC_MAX_TOKENS_PER_QUERY);
        long messageBytes = (Integer) values.get(GRPC_MAX_MESSAGE_BYTES);
        // A packed token id takes at most 5 bytes on the wire; a smaller limit would refuse allowed prompts.
        if (tokens * 5 + 1_024 > messageBytes) {
            throw new ConfigException(GRPC_MAX_MESSAGE_BYTES.key(), messageBytes + " bytes cannot hold a prompt of"
                    + " grpc.maxTokensPerQuery " + tokens + " tokens (needs " + (tokens * 5 + 1_024) + ")");
        }
        checkSecurityFiles(values);
        if (listen > 0 && replay > 0 && replay < listen + ranks && listen < replay + ranks) {
            throw new ConfigException(INGEST_LISTEN_REPLAY_PORT.key(), "replay ports " + replay + ".."
                    + (replay + ranks - 1) + " overlap the listening ports " + listen + ".." + (listen + ranks - 1)
                    + "; vLLM adds the rank to both, so keep them at least maxRanks apart");
        }
    }

    /**
     * Checks that need the JVM the daemon runs in: an index budget its heap cannot hold stops start-up, naming
     * {@code index.budgetMb}, rather than running the daemon out of memory under load.
     *
     * @param maxHeapBytes the heap the JVM may grow to ({@link Runtime#maxMemory()})
     */
    public static void checkHeap(BrokerConfig config, long maxHeapBytes) throws ConfigException {
        long budgetMb = config.get(INDEX_BUDGET_MB);
        long maxMb = IndexBudget.maxBudgetMb(maxHeapBytes);
        if (budgetMb > maxMb) {
            throw new ConfigException(INDEX_BUDGET_MB.key(), budgetMb + " MiB does not fit a heap of "
                    + (maxHeapBytes >> 20) + " MiB: allowing the index " + IndexBudget.HEAP_PER_BUDGET
                    + " times its budget at its peak and the rest of the daemon " + IndexBudget.HEAP_RESERVE_MB
                    + " MiB, so at most " + maxMb + " here; lower it, or give the JVM at least "
                    + (IndexBudget.HEAP_PER_BUDGET * budgetMb + IndexBudget.HEAP_RESERVE_MB)
                    + " MiB of heap (-Xmx, or -XX:MaxRAMPercentage of the container's memory)");
        }
    }

    /**
     * The gRPC security files: a certificate needs its key and the other way round, a client CA needs TLS (mutual
     * TLS without a server certificate is not a thing), and every file named must be a readable file now.
     */
    private static void checkSecurityFiles(Map<Setting<?>, Object> values) throws ConfigException {
        String cert = (String) values.get(GRPC_TLS_CERT_FILE);
        String key = (String) values.get(GRPC_TLS_KEY_FILE);
        String clientCa = (String) values.get(GRPC_TLS_CLIENT_CA_FILE);
        if (!cert.isEmpty() && key.isEmpty()) {
            throw new ConfigException(GRPC_TLS_KEY_FILE.key(), "is empty but grpc.tls.certFile is set; TLS needs both");
        }
        if (cert.isEmpty() && !key.isEmpty()) {
            throw new ConfigException(GRPC_TLS_CERT_FILE.key(), "is empty but grpc.tls.keyFile is set; TLS needs both");
        }
        if (cert.isEmpty() && !clientCa.isEmpty()) {
            throw new ConfigException(GRPC_TLS_CLIENT_CA_FILE.key(), "needs TLS: set grpc.tls.certFile and"
                    + " grpc.tls.keyFile too");
        }
        for (Setting<?> setting : List.of(GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE, GRPC_TLS_CLIENT_CA_FILE,
                GRPC_AUTH_TOKENS_FILE)) {
            String file = (String) values.get(setting);
            if (!file.isEmpty() && !(Files.isRegularFile(Path.of(file)) && Files.isReadable(Path.of(file)))) {
                throw new ConfigException(setting.key(), "'" + file + "' is not a readable file");
            }
        }
    }

    /** The configuration table as Markdown, as the README shows it. */
    public static String markdownTable() {
        StringBuilder table = new StringBuilder();
        table.append("| key | environment variable | type | default | meaning |\n");
        table.append("|---|---|---|---|---|\n");
        for (Setting<?> setting : ALL) {
            table.append("| `").append(setting.key()).append("` | `").append(setting.envName()).append("` | ")
                    .append(setting.type()).append(" | `").append(setting.defaultText()).append("` | ")
                    .append(setting.description()).append(" |\n");
        }
        return table.toString();
    }
}
