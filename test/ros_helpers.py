"""Test-side access to the real node: the package's node_session with the test suite's defaults."""

from __future__ import annotations

from pathlib import Path

from movseg_ros.ros import node_session
from movseg_ros.ros.node_session import NodeProcess

ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = ROOT / "config" / "segment.yaml"
SHM_PROFILE = ROOT / "config" / "fastdds_shm.xml"


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment keeping ROS traffic on this machine, in its own domain, over the SHM profile."""
    env = node_session.ros_env(domain_id)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(SHM_PROFILE)
    return env


class RosHarness(node_session.StreamClient):
    """The stream client on the tests' camera topic; failures are test assertions."""

    def __init__(self, image_topic: str = "/test/image", node_name: str = "movseg_test") -> None:
        super().__init__(image_topic, node_name)

    def wait_connected(self, timeout: float = 15.0, node: NodeProcess | None = None) -> None:
        try:
            super().wait_connected(timeout, node)
        except RuntimeError as e:
            raise AssertionError(str(e)) from None

    def wait_output(self, stamp_ns: int, count: int = 1, timeout: float = 10.0):
        try:
            return super().wait_output(stamp_ns, count, timeout)
        except TimeoutError as e:
            raise AssertionError(str(e)) from None

    def wait_diagnostics(self, predicate, timeout: float = 10.0) -> dict[str, str]:
        try:
            return super().wait_diagnostics(predicate, timeout)
        except TimeoutError as e:
            raise AssertionError(str(e)) from None


def init_rclpy(domain_id: int) -> None:
    """rclpy in this process on the test domain (the environment is read at init)."""
    node_session.init_rclpy(ros_env(domain_id))


def stop_cleanly(node: NodeProcess, harness: RosHarness) -> tuple[int, str]:
    """Close the client, stop the node; its exit code and log (the node process is always cleaned up)."""
    harness.close()
    try:
        code = node.stop(timeout=15.0)
        return code, node.log()
    finally:
        node.close()


def assert_refuses_corrupt_weights(start, good: Path, folder: Path, parameter: str) -> None:
    """`start(weights_path)` with a truncated copy of `good`: exit 2, one line naming the parameter and the
    file and saying in full what is wrong (not cut off mid-sentence), no traceback."""
    bad = folder / "corrupt.pt"
    bad.write_bytes(good.read_bytes()[:4096])
    node = start(str(bad))
    try:
        code = node.wait_exit(60)
        log = node.log()
    finally:
        node.close()
    assert code == 2, log
    assert "bad parameter" in log and str(bad) in log and "corrupt or truncated" in log, log
    assert f"parameter '{parameter}'" in log, log
    fatal = [line for line in log.splitlines() if "bad parameter" in line]
    assert len(fatal) == 1 and not fatal[0].rstrip().endswith((",", ":", "(", " the", " a")), fatal
    assert "Traceback" not in log, log


def assert_refuses_corrupt_shipped(env: dict[str, str], folder: Path, model: str, parameter: str, topic: str,
                                   settings: tuple[str, ...] = ()) -> None:
    """A node started with `settings` ("name:=value") and `parameter` set to a truncated copy of the shipped
    models/`model` refuses it as `assert_refuses_corrupt_weights` says; its input remapped to `topic`."""
    from movseg_ros.paths import share_dir

    def start(weights: str) -> NodeProcess:
        extra = [arg for setting in (*settings, f"{parameter}:={weights}") for arg in ("-p", setting)]
        return NodeProcess.start(env, remap=f"image:={topic}", extra=extra)

    assert_refuses_corrupt_weights(start, share_dir() / "models" / model, folder, parameter)
