"""Helpers for tests that talk to the real node over ROS: process control, a camera, a collector."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2

from movseg_ros.ros.image_codec import header_of, stamp_ns_of

ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = ROOT / "config" / "segment.yaml"
SHM_PROFILE = ROOT / "config" / "fastdds_shm.xml"
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
DEEP_RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=300, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE)


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment keeping ROS traffic on this machine, in its own domain, over the SHM profile."""
    env = dict(os.environ)
    env.update({
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(SHM_PROFILE),
        "PYTHONUNBUFFERED": "1",
        "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
    })
    return env


class NodeProcess:
    """The segment node in its own process, with its output captured to a file."""

    def __init__(self, env: dict[str, str], ros_args: list[str], cwd: Path = ROOT) -> None:
        self._log = tempfile.NamedTemporaryFile("w+", prefix="movseg-node-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "movseg_ros.ros.segment_node", "--ros-args", *ros_args]
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @classmethod
    def start(cls, env: dict[str, str], params_file: Path = PARAMS_FILE, remap: str = "image:=/test/image",
              extra: list[str] | None = None) -> "NodeProcess":
        return cls(env, ["--params-file", str(params_file), "-r", remap, *(extra or [])])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def wait_exit(self, timeout: float) -> int:
        """Exit code, waiting up to `timeout` s (raises subprocess.TimeoutExpired)."""
        return self.proc.wait(timeout)

    def wait_log(self, text: str, timeout: float) -> bool:
        """True once `text` appears in the node's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if not self.alive():
                return text in self.log()
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGINT) -> int:
        """Signal the node and wait; kill it if it hangs. Returns the exit code."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"node did not exit within {timeout} s of signal {sig}\n{self.log()[-3000:]}")
        return self.proc.returncode

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        os.unlink(self._log.name)


@dataclass
class Received:
    """What the collector got, keyed by header stamp (ns); lists because stamps may repeat."""

    instances: dict[int, list[Image]] = field(default_factory=lambda: defaultdict(list))
    tracks: dict[int, list[PointCloud2]] = field(default_factory=lambda: defaultdict(list))
    instance_times: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    diagnostics: list[dict[str, str]] = field(default_factory=list)


class RosHarness:
    """A camera publisher and an output collector in one test-side node, spun in a thread."""

    def __init__(self, image_topic: str = "/test/image", node_name: str = "movseg_test") -> None:
        self.node = Node(node_name)
        self.lock = threading.Condition()
        self.got = Received()
        self.camera = self.node.create_publisher(Image, image_topic, DEEP_RELIABLE)
        self.node.create_subscription(Image, "/movseg/instances", self._on_instances, DEEP_RELIABLE)
        self.node.create_subscription(PointCloud2, "/movseg/tracks", self._on_tracks, DEEP_RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - context shut down under us at the end of the session
            pass

    def _on_instances(self, msg: Image) -> None:
        with self.lock:
            stamp = stamp_ns_of(msg.header)
            self.got.instances[stamp].append(msg)
            self.got.instance_times[stamp].append(time.monotonic())
            self.lock.notify_all()

    def _on_tracks(self, msg: PointCloud2) -> None:
        with self.lock:
            self.got.tracks[stamp_ns_of(msg.header)].append(msg)
            self.lock.notify_all()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("movseg"):
                with self.lock:
                    self.got.diagnostics.append({kv.key: kv.value for kv in status.values})
                    self.lock.notify_all()

    def wait_connected(self, timeout: float = 15.0) -> None:
        """Until the node subscribes our camera and publishes what we collect (DDS discovery)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.camera.get_subscription_count() > 0
                    and self.node.count_publishers("/movseg/instances") > 0
                    and self.node.count_publishers("/movseg/tracks") > 0):
                time.sleep(0.3)  # let the matching finish on both sides
                return
            time.sleep(0.05)
        raise AssertionError(f"node not connected within {timeout} s")

    def publish(self, image: np.ndarray | Image, stamp_ns: int, frame_id: str = "camera") -> None:
        """Publish an RGB array (as rgb8) or a ready Image with the given stamp."""
        if isinstance(image, Image):
            msg = image
            msg.header = header_of(stamp_ns, frame_id)
        else:
            h, w = image.shape[:2]
            msg = Image(header=header_of(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                        is_bigendian=0, step=3 * w, data=np.ascontiguousarray(image).tobytes())
        self.camera.publish(msg)

    def wait_output(self, stamp_ns: int, count: int = 1, timeout: float = 10.0) -> tuple[Image, PointCloud2]:
        """The `count`-th instances and tracks messages with this stamp."""
        with self.lock:
            ok = self.lock.wait_for(lambda: len(self.got.instances.get(stamp_ns, [])) >= count
                                    and len(self.got.tracks.get(stamp_ns, [])) >= count, timeout)
            if not ok:
                raise AssertionError(f"no output for stamp {stamp_ns} within {timeout} s")
            return self.got.instances[stamp_ns][count - 1], self.got.tracks[stamp_ns][count - 1]

    def wait_diagnostics(self, predicate, timeout: float = 10.0) -> dict[str, str]:
        """The first diagnostics received from now on that satisfies `predicate`."""
        with self.lock:
            start = len(self.got.diagnostics)
            found: list[dict[str, str]] = []

            def check() -> bool:
                found[:] = [d for d in self.got.diagnostics[start:] if predicate(d)]
                return bool(found)

            if not self.lock.wait_for(check, timeout):
                last = self.got.diagnostics[-1] if self.got.diagnostics else None
                raise AssertionError(f"no matching diagnostics within {timeout} s; last: {last}")
            return found[0]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(5.0)
        self.node.destroy_node()


def init_rclpy(domain_id: int) -> None:
    """rclpy in this process on the test domain (the environment is read at init)."""
    os.environ.update({k: v for k, v in ros_env(domain_id).items() if k.startswith(("ROS_", "FASTDDS_"))})
    rclpy.init()
