"""max_rate: at most so many frames a second reach the pipeline, chosen by header stamps; the rest are counted as
skipped (not dropped: no gap), and the limit can change while the node runs."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from movseg_ros.ros.rate_gate import RateGate

PERIOD_NS = 33_333_333  # a 30 Hz camera


def admitted(gate: RateGate, stamps) -> list[int]:
    return [i for i, s in enumerate(stamps) if gate.admit(int(s))]


def test_no_limit_admits_every_frame() -> None:
    assert admitted(RateGate(0.0), [k * PERIOD_NS for k in range(10)]) == list(range(10))


@pytest.mark.parametrize("rate, every", [(15.0, 2), (10.0, 3), (20.0, 2), (30.0, 1), (100.0, 1)])
def test_a_limit_admits_every_kth_frame_of_a_faster_camera(rate: float, every: int) -> None:
    assert admitted(RateGate(rate), [k * PERIOD_NS for k in range(30)]) == list(range(0, 30, every))


def test_camera_jitter_does_not_halve_the_rate() -> None:
    jitter = np.random.default_rng(0).uniform(-3e6, 3e6, 60)  # +-3 ms on each stamp
    stamps = [k * PERIOD_NS + j for k, j in enumerate(jitter)]
    assert admitted(RateGate(15.0), stamps) == list(range(0, 60, 2))


def test_a_stamp_going_back_starts_again_and_the_rate_can_change() -> None:
    gate = RateGate(15.0)
    assert admitted(gate, [k * PERIOD_NS for k in range(4)]) == [0, 2]
    assert gate.admit(PERIOD_NS)  # back in time (a looped bag): passes, counted from here
    assert not gate.admit(2 * PERIOD_NS)
    gate.set_rate(0.0)
    assert gate.admit(2 * PERIOD_NS + 1)
    with pytest.raises(ValueError, match="max_rate"):
        gate.set_rate(-1.0)


@pytest.mark.ros
@pytest.mark.timeout(240)
def test_the_node_segments_at_most_max_rate_and_counts_the_rest_as_skipped(rclpy_session, node_env) -> None:
    rclpy = pytest.importorskip("rclpy")
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    from movseg_ros.ros.storm import texture
    from ros_helpers import NodeProcess, RosHarness, stop_cleanly

    topic = "/rate_test/image"
    node = NodeProcess.start(node_env, remap=f"image:={topic}", extra=["-p", "max_rate:=10.0", "-p", "warmup_size:=[0, 0]",
                                                                       "-p", "diagnostics_period:=0.2"])
    harness = RosHarness(topic, "rate_test")
    stamps = itertools.count(1_700_000_000_000_000_000, PERIOD_NS)
    try:
        harness.wait_connected(60.0, node)
        first = next(stamps)
        harness.publish(texture(240, 320), first)
        harness.wait_output(first, timeout=60.0)  # the first frame sets the networks up
        sent = [next(stamps) for _ in range(12)]
        passes = [s for s in sent if (s - first) % (3 * PERIOD_NS) == 0]  # every third frame of a 30 Hz camera
        for s in sent:
            harness.publish(texture(240, 320, shift=2), s)
            if s in passes:
                harness.wait_output(s, timeout=30.0)  # answered before the next is sent: the queue never drops
            else:
                time.sleep(0.05)
        time.sleep(0.5)  # any answer to a frame the gate should have passed over
        with harness.lock:
            answered = sorted(s for s in sent if s in harness.got.instance_times)
        assert answered == passes
        diag = harness.wait_diagnostics(lambda d: d["queue depth"] == "0" and int(d["frames skipped"]) == 8)
        assert int(diag["frames dropped"]) == 0 and int(diag["frames processed"]) == 5
        assert int(diag["frames received"]) == sum(int(diag[f"frames {k}"]) for k in
                                                   ("processed", "dropped", "bad", "failed", "skipped"))

        client_node = Node("rate_test_params")
        client = AsyncParameterClient(client_node, "movseg")
        assert client.wait_for_services(timeout_sec=20.0)
        future = client.set_parameters([Parameter("max_rate", value=0.0)])
        rclpy.spin_until_future_complete(client_node, future, timeout_sec=10.0)  # max_rate changes at run time
        assert future.result().results[0].successful
        client_node.destroy_node()
        more = [next(stamps) for _ in range(3)]
        for s in more:
            harness.publish(texture(240, 320, shift=4), s)
            time.sleep(0.2)
        for s in more:
            harness.wait_output(s, timeout=20.0)  # no limit now: every frame
    finally:
        code, log = stop_cleanly(node, harness)
    assert code == 0, log
