package io.kvbroker.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.ConsoleAppender;
import io.kvbroker.config.BrokerConfig;
import io.kvbroker.config.Settings;
import org.slf4j.LoggerFactory;
import org.slf4j.bridge.SLF4JBridgeHandler;

/** Applies {@code log.level} and {@code log.format} to logback once the configuration is validated. */
final class LogSetup {
    private LogSetup() {
    }

    static void apply(BrokerConfig config) {
        if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)) {
            return;
        }
        // gRPC and its Netty log through java.util.logging: into the same log and format as everything else.
        if (!SLF4JBridgeHandler.isInstalled()) {
            SLF4JBridgeHandler.removeHandlersForRootLogger();
            SLF4JBridgeHandler.install();
        }
        context.getLogger("io.kvbroker").setLevel(Level.toLevel(config.get(Settings.LOG_LEVEL), Level.INFO));
        if (config.get(Settings.LOG_FORMAT).equals("json")) {
            Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
            Appender<ILoggingEvent> appender = root.getAppender("STDOUT");
            if (appender instanceof ConsoleAppender<ILoggingEvent> console) {
                JsonEncoder encoder = new JsonEncoder();
                encoder.setContext(context);
                // The message as read (formattedMessage) beside its template and arguments; no per-line context blob.
                encoder.setWithFormattedMessage(true);
                encoder.setWithContext(false);
                encoder.setWithSequenceNumber(false);
                encoder.setWithNanoseconds(false);
                encoder.start();
                console.stop();
                console.setEncoder(encoder);
                console.start();
            }
        }
    }

    /** Flushes and closes the appenders, before the process halts. */
    static void flush() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.stop();
        }
    }
}
