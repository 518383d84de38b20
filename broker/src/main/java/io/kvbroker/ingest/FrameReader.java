package io.kvbroker.ingest;

import org.zeromq.ZMQ;

/**
 * Reads one multipart ZeroMQ message at a time into a frame array it reuses, with the sender's address when asked.
 *
 * <p>Design note: one per ingest thread; a message's frames stay valid until the next read, which is all the
 * handlers need, as they decode straight from the frames.
 */
final class FrameReader {
    private static final int MAX_FRAMES = 8;
    private final byte[][] frames = new byte[MAX_FRAMES][];
    /** The ZeroMQ Peer-Address of the last message read, when asked for. */
    private String peerAddress;

    /**
     * Reads one message without waiting; returns its frame count (frames past the eighth are read and not kept), or
     * 0 if none was waiting. With {@code withPeer}, also takes the first frame's Peer-Address metadata.
     */
    int receive(ZMQ.Socket socket, boolean withPeer) {
        byte[] first;
        if (withPeer) {
            zmq.Msg msg = socket.recvMsg(ZMQ.DONTWAIT);
            first = msg == null ? null : msg.data();
            zmq.io.Metadata metadata = msg == null ? null : msg.getMetadata();
            peerAddress = metadata == null ? null : metadata.get(zmq.io.Metadata.PEER_ADDRESS);
        } else {
            first = socket.recv(ZMQ.DONTWAIT);
        }
        if (first == null) {
            return 0;
        }
        frames[0] = first;
        int count = 1;
        while (socket.hasReceiveMore()) {
            byte[] frame = socket.recv(0);
            if (count < MAX_FRAMES) {
                frames[count] = frame;
            }
            count++;
        }
        return count;
    }

    /** The last message's frames (as many as its count, up to eight). */
    byte[][] frames() {
        return frames;
    }

    /** The last message's sender, when read {@code withPeer}; null if unknown. */
    String peerAddress() {
        return peerAddress;
    }
}
