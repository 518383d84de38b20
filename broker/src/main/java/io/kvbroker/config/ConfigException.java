package io.kvbroker.config;

/** A setting that cannot be used; the message starts with the key so an operator knows what to fix. */
public final class ConfigException extends Exception {
    private static final long serialVersionUID = 1L;

    private final String key;

    public ConfigException(String key, String problem) {
        super(key + ": " + problem);
        this.key = key;
    }

    /** The key (with list indexes and nested fields, such as {@code engines.static[2].endpoint}). */
    public String key() {
        return key;
    }
}
