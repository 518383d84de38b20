package io.kvbroker.client;

/**
 * Read access to an index of which engines hold which content keys: the broker's index and a gateway's local mirror
 * both offer it, so {@link PrefixScorer} gives the same answers on either side.
 */
public interface ResidencyView {

    /** Receives one holder of a key. */
    @FunctionalInterface
    interface HolderVisitor {
        /**
         * @param engineId the holding engine
         * @param span chunks the held block covers, ending at the visited key
         * @param media the {@link Media} bits it is held on
         */
        void holder(int engineId, int span, int media);
    }

    /** Visits every engine holding a block recorded under {@code key}. */
    void forEachHolder(long key, HolderVisitor visitor);

    /** The largest span any recorded block has (1 when every engine's blocks equal the granularity). */
    int maxSpan();

    /** One more than the largest engine id that may be visited. */
    int engineIdBound();
}
