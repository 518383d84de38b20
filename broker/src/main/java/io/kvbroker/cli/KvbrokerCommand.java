package io.kvbroker.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code kvbroker} command line: the daemon and the tools that go with it. */
@Command(name = "kvbroker", mixinStandardHelpOptions = true, versionProvider = KvbrokerCommand.Version.class,
        description = "Fans in vLLM KV-cache events, keeps a global block index, serves prefix queries.",
        subcommands = {ServeCommand.class, ConfigCommand.class, DecodeCommand.class, SimulateCommand.class,
            ScoreCommand.class, LookupCommand.class, EnginesCommand.class, HintCommand.class,
            WatchCommand.class})
public final class KvbrokerCommand implements Runnable {
    /** Exit status for a configuration that does not validate (picocli uses 2 for usage errors too). */
    static final int EXIT_CONFIG = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new KvbrokerCommand()).execute(args));
    }

    /** Reads the version from the jar's manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String version = KvbrokerCommand.class.getPackage().getImplementationVersion();
            return new String[] {"kvbroker " + (version == null ? "(development build)" : version)};
        }
    }
}
