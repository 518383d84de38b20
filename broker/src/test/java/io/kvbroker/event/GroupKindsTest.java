package io.kvbroker.event;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class GroupKindsTest {
    @Test
    void storesTeachKindsAndAStoreWithoutKindDoesNotUnteach() {
        GroupKinds kinds = new GroupKinds();
        assertThat(kinds.kindOf(1)).isEqualTo(GroupKind.UNKNOWN);
        kinds.learn(1, GroupKind.SLIDING_WINDOW);
        kinds.learn(1, GroupKind.UNSPECIFIED);
        kinds.learn(300, GroupKind.MAMBA);
        assertThat(kinds.kindOf(1)).isEqualTo(GroupKind.SLIDING_WINDOW);
        assertThat(kinds.kindOf(300)).isEqualTo(GroupKind.UNKNOWN);
        kinds.learn(KvEvent.ABSENT, GroupKind.UNSPECIFIED);
        assertThat(kinds.kindOf(KvEvent.ABSENT).reusablePrefix()).isTrue();
        kinds.clear();
        assertThat(kinds.kindOf(1)).isEqualTo(GroupKind.UNKNOWN);
    }

    @Test
    void onlyFullAttentionKindsDescribeAReusablePrefix() {
        assertThat(GroupKind.fromWireName("full_attention").reusablePrefix()).isTrue();
        assertThat(GroupKind.fromWireName("mla_attention").reusablePrefix()).isTrue();
        assertThat(GroupKind.fromWireName("sliding_window").reusablePrefix()).isFalse();
        assertThat(GroupKind.fromWireName("mamba").reusablePrefix()).isFalse();
        assertThat(GroupKind.fromWireName("cross_attention").reusablePrefix()).isFalse();
        assertThat(GroupKind.UNKNOWN.reusablePrefix()).isFalse();
        assertThat(Medium.fromWireName("FS")).isEqualTo(Medium.STORAGE);
        assertThat(Medium.fromWireName("OBJ")).isEqualTo(Medium.STORAGE);
        assertThat(Medium.fromWireName("NVME")).isEqualTo(Medium.OTHER);
    }
}
