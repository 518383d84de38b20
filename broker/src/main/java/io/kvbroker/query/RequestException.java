package io.kvbroker.query;

/**
 * A query the broker refuses, with the request field to blame and why; the gRPC layer turns the kind into a status
 * code in one place.
 */
public final class RequestException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Why a request was refused. */
    public enum Kind {
        /** The request itself is wrong: a missing, malformed or too large field. */
        INVALID,
        /** The request names something the broker does not know (a model no engine serves). */
        NOT_FOUND,
        /** The request is fine, but a configured bound on the broker's state would be passed. */
        EXHAUSTED,
        /** The broker cannot answer yet (starting, recovering) or any more (stopping). */
        UNAVAILABLE
    }

    private final Kind kind;
    private final String field;

    /** @param field the request field at fault, as the API names it; empty when no single field is */
    public RequestException(Kind kind, String field, String message) {
        super(field.isEmpty() ? message : field + ": " + message, null, false, false);
        this.kind = kind;
        this.field = field;
    }

    public static RequestException invalid(String field, String message) {
        return new RequestException(Kind.INVALID, field, message);
    }

    public static RequestException notFound(String field, String message) {
        return new RequestException(Kind.NOT_FOUND, field, message);
    }

    public Kind kind() {
        return kind;
    }

    public String field() {
        return field;
    }
}
