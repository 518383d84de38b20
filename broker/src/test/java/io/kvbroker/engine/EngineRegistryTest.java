package io.kvbroker.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class EngineRegistryTest {
    private static EngineSpec spec(String pod, int rank, String topic) {
        return new EngineSpec(new EngineKey(pod, rank), "m", Endpoint.parse("tcp://10.0.0.1:" + (5557 + rank)),
                Optional.empty(), topic);
    }

    @Test
    void idsAreDenseStableAndNeverReused() {
        EngineRegistry registry = new EngineRegistry();
        int a = registry.register(spec("a", 0, ""));
        int b = registry.register(spec("a", 1, ""));
        assertThat(a).isZero();
        assertThat(b).isOne();
        assertThat(registry.register(spec("a", 0, ""))).isEqualTo(a);
        registry.remove(a);
        assertThat(registry.find(new EngineKey("a", 0))).isEmpty();
        assertThat(registry.entry(a).removed()).isTrue();
        int again = registry.register(spec("a", 0, ""));
        assertThat(again).isEqualTo(2);
        assertThat(registry.live()).extracting(EngineRegistry.Entry::id).containsExactly(1, 2);
        assertThat(registry.idCount()).isEqualTo(3);
    }

    @Test
    void aChangedSpecUnderTheSameKeyMustBeRemovedFirst() {
        EngineRegistry registry = new EngineRegistry();
        registry.register(spec("a", 0, ""));
        EngineSpec moved = new EngineSpec(new EngineKey("a", 0), "m", Endpoint.parse("tcp://10.0.0.2:5557"),
                Optional.empty(), "");
        assertThatThrownBy(() -> registry.register(moved)).hasMessageContaining("already registered");
    }

    @Test
    void topicAndRankTellEnginesApart() {
        EngineRegistry registry = new EngineRegistry();
        int r0 = registry.register(spec("a", 0, "kv@a@m"));
        int r1 = registry.register(spec("a", 1, "kv@a@m"));
        assertThat(registry.findByTopic("kv@a@m", 0).orElseThrow().id()).isEqualTo(r0);
        assertThat(registry.findByTopic("kv@a@m", 1).orElseThrow().id()).isEqualTo(r1);
        assertThatThrownBy(() -> registry.register(spec("b", 0, "kv@a@m"))).hasMessageContaining("share topic");
    }

    @Test
    void endpointsParseAndOffsetByRank() {
        assertThat(Endpoint.parse("tcp://[::1]:5557").plusPort(3).toString()).isEqualTo("tcp://[::1]:5560");
        assertThat(Endpoint.parse("ipc:///tmp/kv.sock").toString()).isEqualTo("ipc:///tmp/kv.sock");
        assertThatThrownBy(() -> Endpoint.parse("ipc:///tmp/kv.sock").plusPort(1)).hasMessageContaining("ipc");
        assertThatThrownBy(() -> Endpoint.parse("udp://h:1")).hasMessageContaining("tcp://");
        assertThatThrownBy(() -> Endpoint.parse("tcp://h:65535").plusPort(1)).hasMessageContaining("65535");
    }

    @Test
    void incarnationsCountUp() {
        Incarnation first = Incarnation.first(4, 1000);
        Incarnation second = first.next(2000);
        assertThat(second.number()).isEqualTo(2);
        assertThat(second.engineId()).isEqualTo(4);
        assertThatThrownBy(() -> new Incarnation(4, 0, 0)).isInstanceOf(IllegalArgumentException.class);
    }
}
