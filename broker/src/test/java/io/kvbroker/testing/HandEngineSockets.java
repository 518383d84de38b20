package io.kvbroker.testing;

import io.kvbroker.codec.WireFrames;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/** Raw ZeroMQ for tests that play an engine by hand: multi-frame sends, and a replay ROUTER with nothing buffered. */
public final class HandEngineSockets {
    private static final byte[] EMPTY = new byte[0];

    private HandEngineSockets() {
    }

    /** A socket of {@code type} bound on loopback at {@code port}: an engine's PUB or replay ROUTER. */
    public static ZMQ.Socket bound(ZContext zmq, SocketType type, int port) {
        ZMQ.Socket socket = zmq.createSocket(type);
        socket.bind("tcp://127.0.0.1:" + port);
        return socket;
    }

    /** Sends {@code frames} as one message. */
    public static void send(ZMQ.Socket socket, byte[]... frames) {
        for (int i = 0; i < frames.length; i++) {
            socket.send(frames[i], i < frames.length - 1 ? ZMQ.SNDMORE : 0);
        }
    }

    /**
     * Answers every replay request waiting on {@code router} as an engine with an empty buffer (the end marker at
     * once, under {@code topic}); returns the identity of the last DEALER that asked, or {@code last} if none did.
     */
    public static byte[] answerEmpty(ZMQ.Socket router, byte[] topic, byte[] last) {
        byte[] dealer = last;
        byte[] identity;
        while ((identity = router.recv(ZMQ.DONTWAIT)) != null) {
            while (router.hasReceiveMore()) {
                router.recv(0);
            }
            dealer = identity;
            send(router, identity, EMPTY, topic, WireFrames.sequenceFrame(WireFrames.END_OF_REPLAY), EMPTY);
        }
        return dealer;
    }
}
