package io.kvbroker.core;

/** Medium bit masks, as residency views report them: a block may be held on several media at once. */
public final class Media {
    public static final int GPU = 1;
    public static final int CPU = 2;
    public static final int STORAGE = 4;
    /** A tier whose name this release does not know. */
    public static final int OTHER = 8;
    public static final int ALL = GPU | CPU | STORAGE | OTHER;

    private Media() {
    }
}
