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

    public static final Setting<String> BROKER_NAME = Setting.optionalText("broker.name", "",
            "Name of this replica in logs; empty means the host name (the pod name in a StatefulSet).");

    public static final Setting<Integer> SHUTDOWN_DRAIN_TIMEOUT_MS = Setting.millis(
            "shutdown.drainTimeoutMs", 10_000, 0, 600_000,
            "On SIGTERM, how long components get in all to drain and close before the process exits anyway.");

    public static final Setting<String> LOG_LEVEL = Setting.oneOf(
            "log.level", "info", List.of("error", "warn", "info", "debug", "trace"),
            "Level of kvbroker's own loggers (libraries stay at warn).");

    public static final Setting<String> LOG_FORMAT = Setting.oneOf("log.format", "plain", List.of("plain", "json"),
            "Log line format on standard output: plain text, or one JSON object per line for log collectors.");

    public static final Setting<Integer> LOG_STATUS_INTERVAL_MS = Setting.millis(
            "log.statusIntervalMs", 10_000, 100, 3_600_000,
            "How often one status line (engines by state, ingest rates, fault counters, index size, a sample Score when"
                    + " simulating) is logged.");

    public static final Setting<List<EngineSpec>> ENGINES_STATIC = Setting.list(
            "engines.static", "engines", new StaticEnginesParser(),
            "Engines to subscribe to: each with pod, model, endpoint (the engine's PUB, tcp://host:port), and"
                    + " optionally replayEndpoint, topic and dataParallelSize (ranks 0..n-1 at port+rank).");

    public static final Setting<Integer> DISCOVERY_REMOVE_GRACE_MS = Setting.millis(
            "discovery.removeGraceMs", 30_000, 0, 86_400_000,
            "How long a discovered engine may be missing (pod gone or not Ready, address not resolved) before it is"
                    + " removed and its blocks cleared; back within this time, it carries on where it was.");

    public static final Setting<List<DnsService>> DISCOVERY_DNS_SERVICES = Setting.list(
            "discovery.dns.services", "services", new DnsServicesParser(),
            "Headless Services whose A records are engines: each with host, model, and optionally port (default 5557),"
                    + " replayPort, dataParallelSize and topic ({podIP} and {model} are filled in).");

    public static final Setting<Integer> DISCOVERY_DNS_INTERVAL_MS = Setting.millis(
            "discovery.dns.intervalMs", 10_000, 100, 3_600_000,
            "How often the DNS services are resolved again (the JVM caches answers for 30 s unless"
                    + " -Dsun.net.inetaddr.ttl says otherwise).");

    public static final Setting<Boolean> DISCOVERY_KUBERNETES_ENABLED = Setting.bool(
            "discovery.kubernetes.enabled", false,
            "Discover engines from the Kubernetes API: Running and Ready pods matching the label selector, read through"
                    + " list and watch (docs/operations.md lists the pod annotations).");

    public static final Setting<List<String>> DISCOVERY_KUBERNETES_NAMESPACES = Setting.list(
            "discovery.kubernetes.namespaces", "strings", ValueParsers.textList(),
            "Namespaces to watch for engine pods; empty means kvbroker's own namespace.");

    public static final Setting<String> DISCOVERY_KUBERNETES_LABEL_SELECTOR = Setting.text(
            "discovery.kubernetes.labelSelector", "kvbroker.io/kv-events=enabled",
            "Label selector of the engine pods.");

    public static final Setting<Integer> METRICS_PORT = Setting.integer("metrics.port", 9464, 0, 65_535,
            "HTTP port of the Prometheus metrics (/metrics) and the health probes (/-/healthy, /-/ready); 0 turns the"
                    + " HTTP server off.");

    public static final Setting<String> METRICS_HOST = Setting.text("metrics.host", "0.0.0.0",
            "The address the metrics HTTP server binds to.");

    public static final Setting<Integer> INGEST_REPLAY_TIMEOUT_MS = Setting.millis(
            "ingest.replayTimeoutMs", 1000, 10, 600_000,
            "How long a replay may go without a reply before it counts as cut short and is asked again.");

    public static final Setting<Integer> INGEST_REPLAY_MAX_ATTEMPTS = Setting.integer(
            "ingest.replayMaxAttempts", 3, 1, 100,
            "Replay requests in a row that bring nothing new before the missing batches count as lost (the engine is"
                    + " voided).");

    public static final Setting<Integer> INGEST_REPLAY_CONNECT_WAIT_MS = Setting.millis(
            "ingest.replayConnectWaitMs", 10_000, 0, 600_000,
            "How long a replay waits for its socket to reconnect (an engine coming back) before silence counts as"
                    + " tries; longer than the reconnect backoff (ingest.reconnectIntervalMaxMs).");

    public static final Setting<Integer> INGEST_REPLAY_MIN_INTERVAL_MS = Setting.millis(
            "ingest.replayMinIntervalMs", 50, 0, 60_000,
            "The least time between two replay requests to one engine; a request due sooner waits. Bounds what an"
                    + " engine whose replies never satisfy can cost (20 requests a second at 50).");

    public static final Setting<Integer> INGEST_SILENT_AFTER_MS = Setting.millis(
            "ingest.silentAfterMs", 30_000, 100, 86_400_000,
            "An engine that sends nothing for this long is reported silent (its blocks are kept) and, with a replay"
                    + " endpoint, asked once from its cursor for batches lost just before it fell quiet.");

    public static final Setting<Integer> INGEST_MAX_PENDING_BATCHES = Setting.integer(
            "ingest.maxPendingBatches", 10_000, 16, 10_000_000,
            "Live batches held per engine while its replay runs; beyond this they are dropped and replayed later.");

    public static final Setting<Integer> INGEST_MAX_PENDING_BYTES = Setting.integer(
            "ingest.maxPendingBytes", "bytes", 33_554_432, 65_536, 1_073_741_824,
            "Payload bytes of live batches held per engine while its replay runs (the first always waits); beyond"
                    + " this they are dropped and replayed later, as past ingest.maxPendingBatches. Bounds what a"
                    + " replay can cost the heap when batches are large.");

    public static final Setting<Integer> INGEST_RECEIVE_HIGH_WATER_MARK = Setting.integer(
            "ingest.receiveHighWaterMark", "messages", 100_000, 0, 100_000_000,
            "ZeroMQ receive high-water mark of each engine's SUB socket (0: unlimited). At the mark the SUB stops"
                    + " reading, the kernel buffers fill, and the engine's publisher drops; the lost batches come back"
                    + " as gaps replayed from the engine's buffer.");

    public static final Setting<Integer> INGEST_MAX_MESSAGE_BYTES = Setting.integer(
            "ingest.maxMessageBytes", "bytes", 33_554_432, 65_536, 1_073_741_824,
            "Largest ZeroMQ frame taken from an engine (live, replay or listening socket); ZeroMQ drops the connection"
                    + " of a peer that sends a larger one, counted as a disconnect. The default, 32 MiB, is about twice"
                    + " one scheduler step of 1,000,000 tokens (no vLLM batches more per step): 62,500 blocks of 16"
                    + " tokens at about 300 bytes each (16 tokens of 5 bytes, a 34-byte digest, extra keys, one"
                    + " eviction of 90 bytes) is 19 MB.");

    public static final Setting<Integer> INGEST_RECONNECT_INTERVAL_MS = Setting.millis(
            "ingest.reconnectIntervalMs", 100, 10, 60_000,
            "How soon a lost engine connection is tried again (ZeroMQ doubles it up to"
                    + " ingest.reconnectIntervalMaxMs).");

    public static final Setting<Integer> INGEST_RECONNECT_INTERVAL_MAX_MS = Setting.millis(
            "ingest.reconnectIntervalMaxMs", 500, 10, 60_000,
            "The longest wait between tries to reach a lost engine. Without a replay endpoint, batches an engine"
                    + " publishes before kvbroker is connected again are lost for good: a restarted vLLM binds its port"
                    + " about a second before its first batch, so this must stay well under a second.");

    public static final Setting<Integer> INGEST_LISTEN_PORT = Setting.integer("ingest.listen.port", 0, 0, 65_535,
            "Listen mode: engines whose endpoint has no '*' connect to kvbroker, rank r to this port + r, so kvbroker"
                    + " binds port..port+maxRanks-1 and tells engines apart by (topic, rank). 0 turns listening off.");

    public static final Setting<String> INGEST_LISTEN_HOST = Setting.text("ingest.listen.host", "0.0.0.0",
            "Listen mode: the address kvbroker binds its listening SUB sockets to.");

    public static final Setting<Integer> INGEST_LISTEN_MAX_RANKS = Setting.integer(
            "ingest.listen.maxRanks", 8, 1, 1_024,
            "Listen mode: data-parallel ranks per pod, one listening port each.");

    public static final Setting<Integer> INGEST_LISTEN_REPLAY_PORT = Setting.integer(
            "ingest.listen.replayPort", 0, 0, 65_535,
            "Listen mode: the engines' replay base port; rank r of the pod named in topic kv@HOST@MODEL replays at"
                    + " tcp://HOST:replayPort+r. 0: listening engines have no replay.");

    public static final Setting<List<String>> INGEST_LISTEN_ALLOWED_TOPICS = Setting.list(
            "ingest.listen.allowedTopics", "strings", ValueParsers.textList(),
            "Listen mode: topics that may connect, exact or with '*' for any run of characters (kv@*@my-model); engines"
                    + " configured or discovered with a topic are allowed too. A message under another topic is counted"
                    + " (unknown_topic) and dropped. Empty: any non-empty topic.");

    public static final Setting<List<AddressBlock>> INGEST_LISTEN_ALLOWED_ADDRESSES = Setting.list(
            "ingest.listen.allowedAddresses", "strings", ValueParsers.addressBlocks(),
            "Listen mode: IP addresses or CIDR blocks (10.0.0.0/8) engines may connect from; a message from elsewhere"
                    + " is counted (unknown_address) and dropped. Empty: any address.");

    public static final Setting<Integer> INDEX_GRANULARITY = Setting.integer("index.granularity", "tokens", 16, 1, 4096,
            "Tokens per content-key chunk (vLLM's hash block size); engine blocks of k times this span k chunks."
                    + " Gateways must compute keys with the same value.");

    public static final Setting<Double> INDEX_WEIGHT_GPU = Setting.number("index.weights.gpu", 1.0, 0, 1000,
            "Score weight of a matched token held on GPU.");

    public static final Setting<Double> INDEX_WEIGHT_CPU = Setting.number("index.weights.cpu", 0.8, 0, 1000,
            "Score weight of a matched token offloaded to CPU memory.");

    public static final Setting<Double> INDEX_WEIGHT_STORAGE = Setting.number("index.weights.storage", 0.5, 0, 1000,
            "Score weight of a matched token on a storage tier (unknown tiers get 0.8 of this).");

    public static final Setting<Integer> INDEX_BUDGET_MB = Setting.integer("index.budgetMb", "MiB", 0, 0, 4_194_304,
            "Heap the index may use for blocks, split in index.budgetShares equal per-engine quotas (64 bytes an"
                    + " indexed block). An engine over its quota loses chain tails: storage-only first, then CPU, then"
                    + " GPU; it is reported truncated. Start-up refuses a budget above a third of the heap less 32 MiB"
                    + " (allowing the index three times its budget at its peak). 0: no budget.");

    public static final Setting<Integer> INDEX_BUDGET_SHARES = Setting.integer("index.budgetShares", 1000, 1, 1_000_000,
            "Engines the budget is planned for: each engine's quota is budgetMb / budgetShares, fixed, so evictions"
                    + " depend only on each engine's own stream and replicas agree.");

    public static final Setting<String> JOURNAL_DIR = Setting.path("journal.dir", "kvbroker-data",
            "Folder of the RocksDB journal (replay log, engine cursors, index checkpoints), so a restart loses nothing."
                    + " Empty: no journal; a restart starts cold.");

    public static final Setting<String> JOURNAL_SYNC = Setting.oneOf(
            "journal.sync", "interval", List.of("batch", "interval", "none"),
            "When the journal's write-ahead log reaches the disk: batch (fsync per batch), interval (fsync every"
                    + " syncIntervalMs; a machine crash loses at most that window, a process crash nothing) or none"
                    + " (left to the OS). What is lost is replayed from the engines.");

    public static final Setting<Integer> JOURNAL_SYNC_INTERVAL_MS = Setting.millis(
            "journal.syncIntervalMs", 100, 1, 60_000,
            "With journal.sync=interval, how often the write-ahead log is fsynced.");

    public static final Setting<Integer> JOURNAL_RETENTION_MAX_MB = Setting.integer(
            "journal.retention.maxMb", "MiB", 4096, 0, 16_777_216,
            "Replay log size kept for resuming change streams; the oldest records go first (never past an engine's last"
                    + " checkpoint). 0: no size bound.");

    public static final Setting<Integer> JOURNAL_RETENTION_MAX_AGE_SECONDS = Setting.integer(
            "journal.retention.maxAgeSeconds", "s", 86_400, 0, 365 * 86_400, "Replay log age kept. 0: no age bound.");

    public static final Setting<Integer> JOURNAL_RETENTION_MAX_BATCHES = Setting.integer(
            "journal.retention.maxBatches", 0, 0, Integer.MAX_VALUE,
            "Replay log records (one per batch) kept. 0: no count bound.");

    public static final Setting<Integer> JOURNAL_CHECKPOINT_EVERY_BATCHES = Setting.integer(
            "journal.checkpoint.everyBatches", 5_000, 1, 100_000_000,
            "An engine's index part is checkpointed after this many of its batches (or checkpoint.intervalMs), one"
                    + " engine at a time between batches; recovery replays the log after each checkpoint.");

    public static final Setting<Integer> JOURNAL_CHECKPOINT_INTERVAL_MS = Setting.millis(
            "journal.checkpoint.intervalMs", 60_000, 100, 86_400_000,
            "An engine with batches since its last checkpoint is checkpointed at least this often.");

    public static final Setting<Boolean> JOURNAL_START_FRESH = Setting.bool("journal.startFresh", false,
            "Delete the journal at start-up and rebuild from the engines: the way out of a journal from another release"
                    + " or a damaged one. Refused while another kvbroker holds the folder.");

    public static final Setting<Integer> SIMULATE_ENGINES = Setting.integer("simulate.engines", 0, 0, 2_000,
            "Simulated vLLM engines to run beside the daemon on loopback and ingest (serve --simulate N); 0 for none.");

    public static final Setting<Integer> SIMULATE_BASE_PORT = Setting.integer("simulate.basePort", 16_000, 1024, 60_000,
            "First port of the simulated engines: engine i publishes on base+2i and replays on base+2i+1.");

    public static final Setting<Integer> SIMULATE_STEPS_PER_SECOND = Setting.integer(
            "simulate.stepsPerSecond", 20, 1, 10_000, "Batches each simulated engine publishes per second.");

    public static final Setting<Boolean> SIMULATE_REPLAY = Setting.bool("simulate.replay", true,
            "Whether the simulated engines are ingested with their replay endpoints; false runs them as vLLM runs by"
                    + " default, without one (restarts and gaps are then found from the live stream alone).");

    public static final Setting<Integer> GRPC_PORT = Setting.integer("grpc.port", 50_051, 0, 65_535,
            "Port of the gRPC query API (KvIndexService, health, reflection); 0 picks a free port and logs it.");

    public static final Setting<String> GRPC_HOST = Setting.text("grpc.host", "0.0.0.0",
            "Address the gRPC server binds to.");

    public static final Setting<Integer> GRPC_MAX_TOKENS_PER_QUERY = Setting.integer(
            "grpc.maxTokensPerQuery", "tokens", 131_072, 1, 16_777_216,
            "Largest prompt a Score or Hint may carry, in tokens (content keys: this divided by index.granularity);"
                    + " larger requests get INVALID_ARGUMENT.");

    public static final Setting<Integer> GRPC_MAX_KEYS_PER_LOOKUP = Setting.integer(
            "grpc.maxKeysPerLookup", 8_192, 1, 1_048_576, "Most content keys or block hashes one Lookup may carry.");

    public static final Setting<Integer> GRPC_MAX_MESSAGE_BYTES = Setting.integer(
            "grpc.maxMessageBytes", "bytes", 4_194_304, 1_024, 1_073_741_824,
            "Largest gRPC request accepted (RESOURCE_EXHAUSTED beyond it); must hold a prompt of grpc.maxTokensPerQuery"
                    + " tokens.");

    public static final Setting<Integer> GRPC_MAX_HINTS_PER_ENGINE = Setting.integer(
            "grpc.maxHintsPerEngine", "chunks", 100_000, 1, 100_000_000,
            "Most hinted chunks pending on one engine at a time; a Hint that would pass it gets RESOURCE_EXHAUSTED.");

    public static final Setting<Integer> GRPC_DEFAULT_HINT_TTL_MS = Setting.millis(
            "grpc.defaultHintTtlMs", 5_000, 1, 3_600_000,
            "How long a Hint that gives no ttl_ms holds when the engine does not confirm its blocks.");

    public static final Setting<Integer> GRPC_MAX_HINT_TTL_MS = Setting.millis(
            "grpc.maxHintTtlMs", 60_000, 1, 3_600_000,
            "Longest ttl_ms a Hint may ask for; longer gets INVALID_ARGUMENT.");

    public static final Setting<String> GRPC_TLS_CERT_FILE = Setting.path("grpc.tls.certFile", "",
            "PEM certificate chain of the gRPC server; set (with grpc.tls.keyFile) for TLS. Empty: plain text, logged"
                    + " as a warning.");

    public static final Setting<String> GRPC_TLS_KEY_FILE = Setting.path("grpc.tls.keyFile", "",
            "PEM private key (PKCS#8, BEGIN PRIVATE KEY) of grpc.tls.certFile.");

    public static final Setting<String> GRPC_TLS_CLIENT_CA_FILE = Setting.path("grpc.tls.clientCaFile", "",
            "PEM CA certificates; set: mutual TLS, every client must present a certificate they signed. Empty: no"
                    + " client certificate asked for.");

    public static final Setting<Integer> GRPC_TLS_RELOAD_INTERVAL_MS = Setting.millis(
            "grpc.tls.reloadIntervalMs", 60_000, 100, 86_400_000,
            "How often the certificate, key, client CA and tokens files are checked for changes (modification time or"
                    + " size); changed files apply to new connections without a restart.");

    public static final Setting<String> GRPC_AUTH_TOKENS_FILE = Setting.path("grpc.auth.tokensFile", "",
            "File of bearer tokens, one a line ('#' comments); set: every call but the health service needs"
                    + " 'authorization: Bearer TOKEN' with one of them, else UNAUTHENTICATED. Empty: no token check.");

    public static final Setting<Integer> WATCH_BUFFER_BATCHES = Setting.integer(
            "watch.bufferBatches", "batches", 65_536, 1_024, 16_777_216,
            "Applied batches kept in memory for Watch streams: a watcher further behind than this is ended with ABORTED"
                    + " and resumes from its token (from the journal, or with snapshots of the engines whose batches"
                    + " are gone). Rounded up to a power of two.");

    public static final Setting<Integer> WATCH_THREADS = Setting.integer("watch.threads", 2, 1, 64,
            "Threads sending Watch streams (each serves its share of the watchers).");

    public static final Setting<Integer> WATCH_MAX_WATCHERS = Setting.integer("watch.maxWatchers", 1_024, 1, 100_000,
            "Watch streams open at once; more get RESOURCE_EXHAUSTED.");

    /** All settings, in the order of the configuration table. */
    public static final List<Setting<?>> ALL = List.of(BROKER_NAME, SHUTDOWN_DRAIN_TIMEOUT_MS, LOG_LEVEL, LOG_FORMAT,
            LOG_STATUS_INTERVAL_MS, ENGINES_STATIC, DISCOVERY_REMOVE_GRACE_MS, DISCOVERY_DNS_SERVICES,
            DISCOVERY_DNS_INTERVAL_MS, DISCOVERY_KUBERNETES_ENABLED, DISCOVERY_KUBERNETES_NAMESPACES,
            DISCOVERY_KUBERNETES_LABEL_SELECTOR, METRICS_PORT, METRICS_HOST, INGEST_REPLAY_TIMEOUT_MS,
            INGEST_REPLAY_MAX_ATTEMPTS, INGEST_REPLAY_CONNECT_WAIT_MS, INGEST_REPLAY_MIN_INTERVAL_MS,
            INGEST_SILENT_AFTER_MS, INGEST_MAX_PENDING_BATCHES, INGEST_MAX_PENDING_BYTES,
            INGEST_RECEIVE_HIGH_WATER_MARK, INGEST_MAX_MESSAGE_BYTES, INGEST_RECONNECT_INTERVAL_MS,
            INGEST_RECONNECT_INTERVAL_MAX_MS, INGEST_LISTEN_PORT, INGEST_LISTEN_HOST, INGEST_LISTEN_MAX_RANKS,
            INGEST_LISTEN_REPLAY_PORT, INGEST_LISTEN_ALLOWED_TOPICS, INGEST_LISTEN_ALLOWED_ADDRESSES, INDEX_GRANULARITY,
            INDEX_WEIGHT_GPU, INDEX_WEIGHT_CPU, INDEX_WEIGHT_STORAGE, INDEX_BUDGET_MB, INDEX_BUDGET_SHARES, JOURNAL_DIR,
            JOURNAL_SYNC, JOURNAL_SYNC_INTERVAL_MS, JOURNAL_RETENTION_MAX_MB, JOURNAL_RETENTION_MAX_AGE_SECONDS,
            JOURNAL_RETENTION_MAX_BATCHES, JOURNAL_CHECKPOINT_EVERY_BATCHES, JOURNAL_CHECKPOINT_INTERVAL_MS,
            JOURNAL_START_FRESH, GRPC_PORT, GRPC_HOST, GRPC_MAX_TOKENS_PER_QUERY, GRPC_MAX_KEYS_PER_LOOKUP,
            GRPC_MAX_MESSAGE_BYTES, GRPC_MAX_HINTS_PER_ENGINE, GRPC_DEFAULT_HINT_TTL_MS, GRPC_MAX_HINT_TTL_MS,
            GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE, GRPC_TLS_CLIENT_CA_FILE, GRPC_TLS_RELOAD_INTERVAL_MS,
            GRPC_AUTH_TOKENS_FILE, WATCH_BUFFER_BATCHES, WATCH_THREADS, WATCH_MAX_WATCHERS, SIMULATE_ENGINES,
            SIMULATE_BASE_PORT, SIMULATE_STEPS_PER_SECOND, SIMULATE_REPLAY);

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
