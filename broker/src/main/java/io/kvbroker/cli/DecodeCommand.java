package io.kvbroker.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvbroker.codec.KvEventDecoder;
import io.kvbroker.codec.MalformedMessageException;
import io.kvbroker.codec.WireFrames;
import io.kvbroker.event.AllBlocksCleared;
import io.kvbroker.event.BlockRemoved;
import io.kvbroker.event.BlockStored;
import io.kvbroker.event.GroupKinds;
import io.kvbroker.event.KvEvent;
import io.kvbroker.event.KvEventBatch;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * Decodes captured engine messages to JSON lines: for checking what an engine really sends when its events look
 * wrong, with the same decoder the daemon uses.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = {"Decode vLLM KV-event payloads to JSON lines, with the daemon's own decoder.",
            "Each FILE holds a payload as hex, or frames as 'topic HEX', 'seq HEX', 'payload HEX' lines."})
final class DecodeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--hex", paramLabel = "HEX", description = "A payload given as hex on the command line.")
    List<String> hexPayloads = new ArrayList<>();

    @Parameters(paramLabel = "FILE", arity = "0..*", description = "Files of hex payloads or frames.")
    List<Path> files = new ArrayList<>();

    @Override
    public Integer call() throws IOException {
        KvEventDecoder decoder = new KvEventDecoder();
        GroupKinds kinds = new GroupKinds();
        int failures = 0;
        List<String[]> inputs = new ArrayList<>();
        for (String hex : hexPayloads) {
            inputs.add(new String[] {"--hex", null, null, hex});
        }
        for (Path file : files) {
            inputs.add(readFile(file));
        }
        for (String[] input : inputs) {
            ObjectNode line = JSON.createObjectNode();
            line.put("source", input[0]);
            try {
                if (input[1] != null) {
                    line.put("topic", new String(hex(input[1]), StandardCharsets.UTF_8));
                }
                if (input[2] != null) {
                    line.put("seq", new BigInteger(Long.toUnsignedString(WireFrames.sequence(hex(input[2])))));
                }
                byte[] payload = hex(input[3]);
                KvEventBatch batch = decoder.decode(payload, 0, payload.length, kinds);
                line.put("ts", batch.timestamp());
                line.put("rank", batch.dataParallelRank());
                ArrayNode events = line.putArray("events");
                batch.events().forEach(event -> events.add(toJson(event)));
                line.put("skippedEvents", batch.skippedEvents());
                line.put("skippedFields", batch.skippedFields());
            } catch (MalformedMessageException e) {
                line.put("error", e.reason().label());
                line.put("message", e.getMessage());
                failures++;
            } catch (IllegalArgumentException e) {
                line.put("error", "not_hex");
                line.put("message", e.getMessage());
                failures++;
            }
            System.out.println(JSON.writeValueAsString(line));
        }
        return failures == 0 ? 0 : 1;
    }

    /** {source, topic hex or null, seq hex or null, payload hex}. */
    private static String[] readFile(Path file) throws IOException {
        String text = Files.readString(file).strip();
        String topic = null;
        String seq = null;
        String payload = text;
        if (text.startsWith("topic") || text.startsWith("seq") || text.startsWith("payload")) {
            payload = "";
            for (String row : text.split("\n")) {
                String[] parts = row.strip().split("\\s+", 2);
                String value = parts.length > 1 ? parts[1] : "";
                switch (parts[0]) {
                    case "topic" -> topic = value;
                    case "seq" -> seq = value;
                    case "payload" -> payload = value;
                    default -> throw new IOException(file + ": unexpected line '" + row + "'");
                }
            }
        }
        return new String[] {file.toString(), topic, seq, payload};
    }

    private static byte[] hex(String text) {
        return HexFormat.of().parseHex(text.replaceAll("\\s", ""));
    }

    private static ObjectNode toJson(KvEvent event) {
        ObjectNode node = JSON.createObjectNode();
        if (event instanceof BlockStored s) {
            node.put("type", "BlockStored");
            hashes(node.putArray("blockHashes"), s.blockHashes());
            if (s.hasParent()) {
                node.put("parentBlockHash", unsigned(s.parentHash()));
            } else {
                node.putNull("parentBlockHash");
            }
            ArrayNode tokens = node.putArray("tokenIds");
            for (int token : s.tokenIds()) {
                tokens.add(token);
            }
            node.put("blockSize", s.blockSize());
            optionalInt(node, "loraId", s.loraId());
            node.put("medium", s.medium().name());
            node.put("loraName", s.loraName());
            node.set("extraKeys", JSON.valueToTree(s.extraKeys()));
            optionalInt(node, "groupIdx", s.groupIdx());
            node.put("kind", s.kind().name().toLowerCase(Locale.ROOT));
            optionalInt(node, "slidingWindow", s.slidingWindow());
            putIfSet(node, "locality", s.locality());
            putIfSet(node, "ownership", s.ownership());
            putIfSet(node, "sessionId", s.sessionId());
        } else if (event instanceof BlockRemoved r) {
            node.put("type", "BlockRemoved");
            hashes(node.putArray("blockHashes"), r.blockHashes());
            node.put("medium", r.medium().name());
            optionalInt(node, "groupIdx", r.groupIdx());
            node.put("kind", r.kind().name().toLowerCase(Locale.ROOT));
        } else if (event instanceof AllBlocksCleared c) {
            node.put("type", "AllBlocksCleared");
            node.put("medium", c.medium().name());
        }
        return node;
    }

    private static void hashes(ArrayNode array, long[] hashes) {
        for (long hash : hashes) {
            array.add(unsigned(hash));
        }
    }

    private static BigInteger unsigned(long value) {
        return new BigInteger(Long.toUnsignedString(value));
    }

    private static void optionalInt(ObjectNode node, String name, int value) {
        if (value == KvEvent.ABSENT) {
            node.putNull(name);
        } else {
            node.put(name, value);
        }
    }

    private static void putIfSet(ObjectNode node, String name, String value) {
        if (value != null) {
            node.put(name, value);
        }
    }
}
