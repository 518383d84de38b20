package io.kvbroker.cli;

import io.kvbroker.sim.Workload;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** A prompt given on the command line: token ids (inline or from a file), content keys, or the simulator's sample. */
final class PromptOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", description = "The served model name.")
    String model = "";

    @Option(names = "--lora", paramLabel = "NAME", description = "The LoRA adapter name (none: the base model).")
    String lora = "";

    @Option(names = "--tokens", paramLabel = "IDS", split = ",", description = "Token ids, comma-separated.")
    List<Integer> tokens = new ArrayList<>();

    @Option(names = "--tokens-file", paramLabel = "FILE",
            description = "Token ids from a file, separated by commas or white space.")
    Path tokensFile;

    @Option(names = "--keys", paramLabel = "KEYS", split = ",",
            description = "Content keys instead of tokens, comma-separated (decimal, or hex with 0x).")
    List<String> keys = new ArrayList<>();

    @Option(names = "--sample-prompt", description = "The first system prompt the simulated engines of --model "
            + "share (serve --simulate), plus one token.")
    boolean samplePrompt;

    /** The token ids asked for, or an empty list when the prompt is given as keys. */
    List<Integer> tokenIds(picocli.CommandLine commandLine) throws IOException {
        List<Integer> all = new ArrayList<>(tokens);
        if (tokensFile != null) {
            for (String word : Files.readString(tokensFile).split("[,\\s]+")) {
                if (!word.isEmpty()) {
                    all.add(Integer.parseInt(word));
                }
            }
        }
        if (samplePrompt) {
            if (model.isEmpty()) {
                throw new ParameterException(commandLine,
                        "--sample-prompt needs --model (sim/llama-8b or sim/qwen-7b)");
            }
            for (int token : Workload.sharedSystemPrompt(model)) {
                all.add(token);
            }
            all.add(0);
        }
        return all;
    }

    List<Long> contentKeys() {
        List<Long> parsed = new ArrayList<>();
        for (String key : keys) {
            parsed.add(parseKey(key));
        }
        return parsed;
    }

    /** A 64-bit key or hash: decimal (signed or unsigned) or hex with 0x. */
    static long parseKey(String text) {
        String trimmed = text.trim();
        if (trimmed.startsWith("0x") || trimmed.startsWith("0X")) {
            return Long.parseUnsignedLong(trimmed.substring(2), 16);
        }
        return trimmed.startsWith("-") ? Long.parseLong(trimmed) : Long.parseUnsignedLong(trimmed);
    }

    static String formatKey(long key) {
        return String.format("0x%016x", key);
    }
}
