package io.kvbroker.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

class LifecycleTest {
    private final List<String> events = Collections.synchronizedList(new ArrayList<>());

    private Component component(String name, boolean failStart, CountDownLatch blockStop) {
        return new Component() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public void start() {
                if (failStart) {
                    events.add("fail " + name);
                    throw new IllegalStateException(name + " cannot start");
                }
                events.add("start " + name);
            }

            @Override
            public void stop(Duration budget) throws InterruptedException {
                events.add("stop " + name);
                if (blockStop != null) {
                    blockStop.await();
                }
            }
        };
    }

    @Test
    void startsInOrderAndStopsInReverse() throws Exception {
        Lifecycle lifecycle = new Lifecycle(List.of(component("journal", false, null),
                component("ingest", false, null), component("grpc", false, null)));
        lifecycle.start(Duration.ofSeconds(1));
        Lifecycle.StopReport report = lifecycle.stop(Duration.ofSeconds(1));
        assertThat(report.clean()).isTrue();
        assertThat(events).containsExactly("start journal", "start ingest", "start grpc",
                "stop grpc", "stop ingest", "stop journal");
        assertThat(lifecycle.stop(Duration.ofSeconds(1)).clean()).isTrue();
        assertThat(events).hasSize(6);
    }

    @Test
    void failedStartClosesWhatWasOpenedAndNothingElse() {
        Lifecycle lifecycle = new Lifecycle(List.of(component("journal", false, null),
                component("ingest", false, null), component("grpc", true, null), component("metrics", false, null)));
        assertThatThrownBy(() -> lifecycle.start(Duration.ofSeconds(1))).hasMessage("grpc cannot start");
        assertThat(events).containsExactly("start journal", "start ingest", "fail grpc", "stop ingest",
                "stop journal");
    }

    @Test
    void aStuckComponentDoesNotHoldTheOthersPastTheBudget() {
        CountDownLatch never = new CountDownLatch(1);
        Lifecycle lifecycle = new Lifecycle(List.of(component("journal", false, null),
                component("stuck", false, never), component("grpc", false, null)));
        try {
            lifecycle.start(Duration.ofSeconds(1));
            Lifecycle.StopReport report = lifecycle.stop(Duration.ofMillis(200));
            assertThat(report.timedOut()).containsExactly("stuck");
            assertThat(events).containsSubsequence("stop grpc", "stop stuck", "stop journal");
        } catch (Exception e) {
            throw new AssertionError(e);
        } finally {
            never.countDown();
        }
    }

    @Test
    void failingStopIsReportedAndTheRestStillStop() throws Exception {
        Component failing = new Component() {
            @Override
            public String name() {
                return "ingest";
            }

            @Override
            public void start() {
            }

            @Override
            public void stop(Duration budget) {
                throw new IllegalStateException("socket already closed");
            }
        };
        Lifecycle lifecycle = new Lifecycle(List.of(component("journal", false, null), failing));
        lifecycle.start(Duration.ofSeconds(1));
        Lifecycle.StopReport report = lifecycle.stop(Duration.ofSeconds(1));
        assertThat(report.failed()).containsExactly("ingest");
        assertThat(events).containsExactly("start journal", "stop journal");
    }
}
