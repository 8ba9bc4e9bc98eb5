"""The node as a managed (lifecycle) node: autostart, transitions from a manager, and ~/enable."""

from __future__ import annotations

import itertools
import time

import pytest

pytest.importorskip("rclpy")

import rclpy  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from movseg_ros.ros.storm import texture  # noqa: E402
from ros_helpers import NodeProcess, RosHarness, stop_cleanly  # noqa: E402

pytestmark = [pytest.mark.ros]
TOPIC = "/lifecycle_test/image"


def call(harness: RosHarness, client, request, timeout: float = 15.0):
    assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)  # the harness spins in its own thread
    assert future.done(), f"no answer from {client.srv_name}"
    return future.result()


def state(harness: RosHarness) -> str:
    return call(harness, harness.node.create_client(GetState, "/movseg/get_state"), GetState.Request()).current_state.label


def change(harness: RosHarness, transition: int) -> bool:
    client = harness.node.create_client(ChangeState, "/movseg/change_state")
    return call(harness, client, ChangeState.Request(transition=Transition(id=transition))).success


def answered(harness: RosHarness, stamp: int, timeout: float) -> bool:
    harness.publish(texture(240, 320), stamp)
    try:
        harness.wait_output(stamp, timeout=timeout)
        return True
    except AssertionError:
        return False


@pytest.mark.timeout(240)
def test_a_node_without_autostart_waits_for_its_manager_and_enable_pauses_it(rclpy_session, node_env) -> None:
    node = NodeProcess.start(node_env, remap=f"image:={TOPIC}", extra=["-p", "autostart:=false",
                                                                         "-p", "diagnostics_period:=0.2"])
    harness = RosHarness(TOPIC, "lifecycle_manager")
    stamps = itertools.count(1_700_000_000_000_000_000, 33_333_333)
    enable = harness.node.create_client(SetBool, "/movseg/enable")
    try:
        assert state(harness) == "unconfigured"
        assert harness.camera.get_subscription_count() == 0  # nothing subscribed yet
        diag = harness.wait_diagnostics(lambda d: True, timeout=10.0)
        assert diag["lifecycle state"] == "unconfigured"
        assert change(harness, Transition.TRANSITION_CONFIGURE) and state(harness) == "inactive"
        assert change(harness, Transition.TRANSITION_ACTIVATE) and state(harness) == "active"
        harness.wait_connected(15.0, node)
        assert answered(harness, next(stamps), 20.0)
        assert change(harness, Transition.TRANSITION_DEACTIVATE) and state(harness) == "inactive"
        deadline = time.monotonic() + 10.0
        while harness.camera.get_subscription_count() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert harness.camera.get_subscription_count() == 0
        assert not answered(harness, next(stamps), 2.0)
        assert change(harness, Transition.TRANSITION_CLEANUP) and state(harness) == "unconfigured"
        assert change(harness, Transition.TRANSITION_CONFIGURE) and change(harness, Transition.TRANSITION_ACTIVATE)
        harness.wait_connected(15.0, node)
        assert answered(harness, next(stamps), 20.0)

        reply = call(harness, enable, SetBool.Request(data=False))  # ~/enable: paused frames are skipped
        assert reply.success and "paused" in reply.message
        for _ in range(5):
            assert not answered(harness, next(stamps), 0.5)
        diag = harness.wait_diagnostics(lambda d: int(d["frames skipped"]) >= 5, timeout=10.0)
        assert diag["lifecycle state"] == "active, paused"
        assert call(harness, enable, SetBool.Request(data=True)).success
        assert answered(harness, next(stamps), 20.0)
        diag = harness.wait_diagnostics(lambda d: d["queue depth"] == "0" and d["lifecycle state"] == "active")
        assert int(diag["frames received"]) == sum(int(diag[f"frames {k}"]) for k in
                                                   ("processed", "dropped", "bad", "failed", "skipped"))
        assert node.alive()
    finally:
        code, log = stop_cleanly(node, harness)
        assert code == 0, log


def test_autostart_is_a_parameter_defaulting_to_true() -> None:
    from movseg_ros.ros.parameters import node_specs

    spec = {s.name: s for s in node_specs()}["autostart"]
    assert spec.default is True and spec.read_only
