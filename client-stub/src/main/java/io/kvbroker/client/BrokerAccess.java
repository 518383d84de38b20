package io.kvbroker.client;

import io.grpc.CallCredentials;
import io.grpc.CallOptions;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;

/**
 * How a client gets into a broker, shared by {@link KvIndexClient} and {@link KvIndexWatcher}: the channel's
 * credentials (plain text by default; TLS, with a client certificate for mutual TLS) and a bearer token for every
 * call.
 */
final class BrokerAccess {
    private ChannelCredentials credentials = InsecureChannelCredentials.create();
    private CallCredentials callCredentials;

    void credentials(ChannelCredentials value) {
        this.credentials = value;
    }

    void bearerToken(String token) {
        this.callCredentials = new BearerToken(token);
    }

    ManagedChannel channel(String address) {
        return Grpc.newChannelBuilder(address, credentials).build();
    }

    CallOptions callOptions() {
        return CallOptions.DEFAULT.withCallCredentials(callCredentials);
    }
}
