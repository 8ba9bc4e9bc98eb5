"""The node as a process: parameters from --params-file, refusal of bad values, clean shutdown."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

import rclpy  # noqa: E402
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402

from ros_helpers import PARAMS_FILE, NodeProcess  # noqa: E402

pytestmark = [pytest.mark.ros]


def params_copy(tmp_path: Path, **changes) -> Path:
    """config/segment.yaml with some values changed (dotted names as '__')."""
    doc = yaml.safe_load(PARAMS_FILE.read_text())
    params = doc["movseg"]["ros__parameters"]
    for key, value in changes.items():
        *groups, leaf = key.split("__")
        node = params
        for g in groups:
            node = node[g]
        node[leaf] = value
    path = tmp_path / "segment.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def call(node: Node, future, timeout: float = 10.0):
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), "parameter service did not answer"
    return future.result()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("changes, name", [
    ({"buffer_length": 1}, "buffer_length"),
    ({"pipeline": "foo"}, "pipeline"),
    ({"tracker__alpha_low": 0.95}, "tracker.alpha_low"),
])
def test_bad_parameter_stops_the_node_with_a_message(node_env, tmp_path, changes, name) -> None:
    proc = NodeProcess.start(node_env, params_copy(tmp_path, **changes), remap="image:=/proc_test/image")
    try:
        code = proc.wait_exit(30)
        log = proc.log()
        assert code != 0, log
        assert f"'{name}'" in log and "bad parameter" in log, log
        assert "Traceback" not in log, log
    finally:
        proc.close()


@pytest.mark.timeout(120)
def test_params_file_values_are_the_node_parameters_and_sigterm_exits_cleanly(rclpy_session, node_env, tmp_path) -> None:
    path = params_copy(tmp_path, buffer_length=5, tracker__t_inactive=4, geometric__work_width=320)
    proc = NodeProcess.start(node_env, path, remap="image:=/proc_test/image")
    client_node = Node("movseg_param_test")
    try:
        client = AsyncParameterClient(client_node, "movseg")
        assert client.wait_for_services(timeout_sec=20.0), proc.log()
        got = call(client_node, client.get_parameters(["buffer_length", "tracker.t_inactive", "geometric.work_width",
                                                       "qos.reliability", "publish_overlay"]))
        values = [(v.type, v.integer_value, v.string_value, v.bool_value) for v in got.values]
        assert values[0][:2] == (ParameterType.PARAMETER_INTEGER, 5)
        assert values[1][1] == 4 and values[2][1] == 320
        assert values[3][2] == "best_effort" and values[4][3] is True

        results = call(client_node, client.set_parameters([Parameter("buffer_length", value=9),
                                                           Parameter("publish_overlay", value=False)])).results
        assert not results[0].successful, "buffer_length is read-only while running"
        assert results[1].successful, results[1].reason

        assert proc.alive()
        assert proc.stop(timeout=10.0, sig=signal.SIGTERM) == 0, proc.log()
        assert "Traceback" not in proc.log(), proc.log()
    finally:
        client_node.destroy_node()
        proc.close()
