package io.kvbroker.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvbroker.discovery.PodEngines;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs scripts/enable-kv-events.sh against a sample vLLM Deployment and checks the patch: the events flags vLLM
 * reads, the ports of every rank, and the label and annotations discovery reads (by the code's own names).
 */
class EnableKvEventsScriptTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    private static Path root() {
        String property = System.getProperty("kvbroker.projectRoot");
        return property != null && Files.exists(Path.of(property, "scripts")) ? Path.of(property) : Path.of("..");
    }

    private static Path sample() throws Exception {
        return Path.of(EnableKvEventsScriptTest.class.getResource("/deploy/vllm-deployment-plain.json").toURI());
    }

    private record Run(int exit, String stdout, String stderr) {
    }

    private Run run(String path, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of("bash", root().resolve("scripts/enable-kv-events.sh")
                .toString()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().put("PATH", path);
        builder.redirectOutput(temp.resolve("out").toFile()).redirectError(temp.resolve("err").toFile());
        Process process = builder.start();
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return new Run(process.exitValue(), Files.readString(temp.resolve("out")),
                Files.readString(temp.resolve("err")));
    }

    private static String systemPath() {
        return System.getenv("PATH");
    }

    private static List<String> texts(JsonNode array) {
        List<String> values = new ArrayList<>();
        array.forEach(v -> values.add(v.asText()));
        return values;
    }

    @Test
    void patchTurnsEventsOnForEveryRankAndLabelsThePodsForDiscovery() throws Exception {
        Run run = run(systemPath(), "--file", sample().toString(), "llm", "vllm-llama");
        assertThat(run.exit()).as(run.stderr()).isZero();
        JsonNode template = JSON.readTree(run.stdout()).path("spec").path("template");
        assertThat(template.path("metadata").path("labels").path(PodEngines.SELECTOR_LABEL).asText())
                .isEqualTo(PodEngines.SELECTOR_VALUE);
        JsonNode annotations = template.path("metadata").path("annotations");
        assertThat(annotations.path(PodEngines.MODEL).asText()).isEqualTo("meta-llama/Llama-3.1-8B-Instruct");
        assertThat(annotations.path(PodEngines.DATA_PARALLEL_SIZE).asText()).isEqualTo("2");
        assertThat(annotations.path(PodEngines.EVENTS_PORT).asText()).isEqualTo("5557");
        assertThat(annotations.path(PodEngines.REPLAY_PORT).asText()).isEqualTo("5600");
        assertThat(annotations.path(PodEngines.CONTAINER).asText()).isEqualTo("vllm");
        List<String> known = List.of(PodEngines.MODEL, PodEngines.EVENTS_PORT, PodEngines.REPLAY_PORT,
                PodEngines.DATA_PARALLEL_SIZE, PodEngines.DATA_PARALLEL_START_RANK, PodEngines.TOPIC,
                PodEngines.CONTAINER);
        annotations.fieldNames().forEachRemaining(name -> assertThat(known).as("annotation discovery reads")
                .contains(name));

        JsonNode container = template.path("spec").path("containers").get(0);
        assertThat(container.path("name").asText()).isEqualTo("vllm");
        List<String> args = texts(container.path("args"));
        assertThat(args).as("the earlier event flags are replaced").doesNotContain("--enable-kv-cache-events")
                .containsSubsequence("--model", "/models/llama", "--served-model-name",
                        "meta-llama/Llama-3.1-8B-Instruct", "--data-parallel-size", "2");
        assertThat(args.stream().filter(a -> a.equals("--kv-events-config")).count()).isOne();
        JsonNode config = JSON.readTree(args.get(args.indexOf("--kv-events-config") + 1));
        assertThat(config.path("enable_kv_cache_events").asBoolean()).isTrue();
        assertThat(config.path("publisher").asText()).isEqualTo("zmq");
        assertThat(config.path("endpoint").asText()).isEqualTo("tcp://*:5557");
        assertThat(config.path("replay_endpoint").asText()).isEqualTo("tcp://*:5600");
        assertThat(config.path("topic").asText()).isEqualTo("kv@$(POD_IP)@meta-llama/Llama-3.1-8B-Instruct");
        assertThat(annotations.path(PodEngines.TOPIC).asText().replace("{podIP}", "$(POD_IP)")
                .replace("{model}", "meta-llama/Llama-3.1-8B-Instruct")).isEqualTo(config.path("topic").asText());
        assertThat(container.path("env").get(0).path("valueFrom").path("fieldRef").path("fieldPath").asText())
                .isEqualTo("status.podIP");
        List<Integer> ports = new ArrayList<>();
        container.path("ports").forEach(p -> ports.add(p.path("containerPort").asInt()));
        assertThat(ports).containsExactlyInAnyOrder(5557, 5600, 5558, 5601);
    }

    @Test
    void overlappingPortsAreRefusedWithTheFix() throws Exception {
        Run run = run(systemPath(), "--replay-port", "5558", "--file", sample().toString(), "llm", "vllm-llama");
        assertThat(run.exit()).isNotZero();
        assertThat(run.stderr()).contains("overlap", "--replay-port 5559");
        assertThat(run.stdout()).isEmpty();
    }

    @Test
    void appliesThePatchWithKubectlWhenItIsThere() throws Exception {
        Path bin = Files.createDirectories(temp.resolve("bin"));
        Path calls = temp.resolve("kubectl-calls");
        Path kubectl = bin.resolve("kubectl");
        // A stand-in kubectl: `get` prints the sample Deployment, anything else is recorded one argument a line.
        Files.writeString(kubectl, "#!/usr/bin/env bash\nif [[ $1 == get ]]; then cat '" + sample() + "'; else"
                + " printf '%s\\n' \"$@\" >> '" + calls + "'; fi\n", StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(kubectl, PosixFilePermissions.fromString("rwxr-xr-x"));
        Run run = run(bin + ":" + systemPath(), "llm", "vllm-llama");
        assertThat(run.exit()).as(run.stderr()).isZero();
        List<String> applied = Files.readAllLines(calls);
        assertThat(applied.subList(0, 7)).containsExactly("patch", "deployment", "vllm-llama", "-n", "llm", "--type",
                "strategic");
        assertThat(applied.get(7)).isEqualTo("-p");
        String patch = String.join("\n", applied.subList(8, applied.size()));
        assertThat(JSON.readTree(patch)).isEqualTo(JSON.readTree(run.stdout()));
    }
}
