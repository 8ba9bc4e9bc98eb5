"""Drive the real node from another process: start it, feed it a camera, collect what it publishes.

Used by `movseg demo`, `movseg bench node` and the integration tests, so all three exercise the
node exactly as a robot would: its own process, real topics, a private ROS domain kept on this
machine (localhost discovery) and the shared-memory Fast DDS profile for camera-sized images.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from movseg_ros.paths import config_file
from movseg_ros.ros.image_codec import header_of, stamp_ns_of

RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
DEEP_RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=300, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE)
SENSOR = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                    durability=DurabilityPolicy.VOLATILE)


def spin_in_thread(executor: SingleThreadedExecutor) -> threading.Thread:
    """Spin `executor` in a daemon thread until it is shut down (an error then is the shutdown's)."""
    def spin() -> None:
        try:
            executor.spin()
        except Exception:  # noqa: BLE001 - the context was shut down under us at the end
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return thread


def random_domain() -> int:
    """A ROS_DOMAIN_ID for one run, so runs on one machine do not meet."""
    return random.SystemRandom().randint(1, 200)


def ros_env(domain_id: int, shm_profile: bool = True) -> dict[str, str]:
    """Environment keeping ROS traffic on this machine, in its own domain, over the SHM profile."""
    env = dict(os.environ)
    env.update({
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONUNBUFFERED": "1",
        "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
    })
    if shm_profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(config_file("fastdds_shm.xml"))
    else:
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    return env


def init_rclpy(env: dict[str, str]) -> None:
    """rclpy in this process on the same domain and transports as the node (read at init)."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("ROS_", "FASTDDS_"))})
    rclpy.init()


def camera_info_of(k: Any, header: Any) -> CameraInfo:
    """A plumb-bob CameraInfo without distortion for Intrinsics `k`."""
    info = CameraInfo(header=header, width=k.width, height=k.height, distortion_model="plumb_bob",
                      d=[0.0] * 5)
    info.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class NodeProcess:
    """The segment node in its own process, its output captured to a log file."""

    def __init__(self, env: dict[str, str], ros_args: list[str], cwd: Path | None = None) -> None:
        self._log = tempfile.NamedTemporaryFile("w+", prefix="movseg-node-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "movseg_ros.ros.segment_node", "--ros-args", *ros_args]
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @classmethod
    def start(cls, env: dict[str, str], params_file: Path | None = None, remap: str = "image:=/movseg_client/image",
              extra: list[str] | None = None) -> "NodeProcess":
        """`segment_node --ros-args --params-file P -r image:=TOPIC [extra]` (P: the installed segment.yaml)."""
        params = params_file or config_file("segment.yaml")
        return cls(env, ["--params-file", str(params), "-r", remap, *(extra or [])])

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return Path(self._log.name)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

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
        """Signal the node and wait; kill it if it hangs (and say so). Returns the exit code."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise RuntimeError(f"node did not exit within {timeout} s of signal {sig}\n{self.log()[-3000:]}")
        return self.proc.returncode

    def close(self, keep_log: bool = False) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


@dataclass
class Received:
    """What the client got, keyed by header stamp (ns); lists because stamps may repeat."""

    instances: dict[int, list[Image]] = field(default_factory=lambda: defaultdict(list))
    tracks: dict[int, list[PointCloud2]] = field(default_factory=lambda: defaultdict(list))
    instance_times: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    diagnostics: list[dict[str, str]] = field(default_factory=list)
    points: dict[int, list[PointCloud2]] = field(default_factory=lambda: defaultdict(list))
    markers: list[MarkerArray] = field(default_factory=list)


class StreamClient:
    """A camera publisher and a collector of the node's outputs in one node, spun in a thread."""

    def __init__(self, image_topic: str = "/movseg_client/image", node_name: str = "movseg_client",
                 camera_qos: QoSProfile = DEEP_RELIABLE, keep_messages: bool = True, with_3d: bool = False) -> None:
        self.node = Node(node_name)
        self.lock = threading.Condition()
        self.got = Received()
        self.keep_messages = keep_messages
        self.camera = self.node.create_publisher(Image, image_topic, camera_qos)
        self.camera_compressed = self.node.create_publisher(CompressedImage, f"{image_topic}/compressed", camera_qos)
        self.node.create_subscription(Image, "/movseg/instances", self._on_instances, DEEP_RELIABLE)
        self.node.create_subscription(PointCloud2, "/movseg/tracks", self._on_tracks, DEEP_RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)
        self.depth = self.node.create_publisher(Image, f"{image_topic}/depth", camera_qos)
        self.depth_info = self.node.create_publisher(CameraInfo, f"{image_topic}/depth/camera_info", camera_qos)
        self.camera_info = self.node.create_publisher(CameraInfo, f"{image_topic}/camera_info", camera_qos)
        if with_3d:
            self.node.create_subscription(PointCloud2, "/movseg/moving_points", self._on_points, DEEP_RELIABLE)
            self.node.create_subscription(MarkerArray, "/movseg/markers", self._on_markers, DEEP_RELIABLE)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = spin_in_thread(self.executor)

    def _on_instances(self, msg: Image) -> None:
        now = time.monotonic()
        with self.lock:
            stamp = stamp_ns_of(msg.header)
            self.got.instance_times[stamp].append(now)
            if self.keep_messages:
                self.got.instances[stamp].append(msg)
            self.lock.notify_all()

    def _on_tracks(self, msg: PointCloud2) -> None:
        with self.lock:
            if self.keep_messages:
                self.got.tracks[stamp_ns_of(msg.header)].append(msg)
            self.lock.notify_all()

    def _on_points(self, msg: PointCloud2) -> None:
        with self.lock:
            self.got.points[stamp_ns_of(msg.header)].append(msg)
            self.lock.notify_all()

    def _on_markers(self, msg: MarkerArray) -> None:
        with self.lock:
            self.got.markers.append(msg)
            self.lock.notify_all()

    def publish_depth(self, depth_m: np.ndarray, k: Any, stamp_ns: int, frame_id: str = "camera") -> None:
        """Publish metric depth (HxW float32, NaN unknown) as 32FC1 with its CameraInfo, and the colour
        CameraInfo (the same camera: registered depth), all stamped `stamp_ns`."""
        h, w = depth_m.shape
        header = header_of(stamp_ns, frame_id)
        info = camera_info_of(k, header)
        self.camera_info.publish(info)
        self.depth_info.publish(info)
        self.depth.publish(Image(header=header, height=h, width=w, encoding="32FC1", is_bigendian=0, step=4 * w,
                                 data=np.ascontiguousarray(depth_m, "<f4").tobytes()))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("movseg"):
                with self.lock:
                    self.got.diagnostics.append({kv.key: kv.value for kv in status.values})
                    self.lock.notify_all()

    def wait_connected(self, timeout: float = 15.0, node: NodeProcess | None = None) -> None:
        """Until the node subscribes our camera and publishes what we collect (DDS discovery)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.camera.get_subscription_count() > 0
                    and self.node.count_publishers("/movseg/instances") > 0
                    and self.node.count_publishers("/movseg/tracks") > 0):
                time.sleep(0.3)  # let the matching finish on both sides
                return
            if node is not None and not node.alive():
                raise RuntimeError(f"the node exited with code {node.proc.returncode}:\n{node.log()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"node not connected within {timeout} s")

    def publish(self, image: np.ndarray | Image | CompressedImage, stamp_ns: int, frame_id: str = "camera") -> None:
        """Publish an RGB array (as rgb8) or a ready Image or CompressedImage (on `<topic>/compressed`)
        with the given stamp."""
        if isinstance(image, CompressedImage):
            image.header = header_of(stamp_ns, frame_id)
            self.camera_compressed.publish(image)
            return
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
                raise TimeoutError(f"no output for stamp {stamp_ns} within {timeout} s")
            return self.got.instances[stamp_ns][count - 1], self.got.tracks[stamp_ns][count - 1]

    def wait_until(self, predicate: Callable[[Received], bool], timeout: float) -> bool:
        """Wait until `predicate(received)` holds; False on time-out."""
        with self.lock:
            return self.lock.wait_for(lambda: predicate(self.got), timeout)

    def wait_diagnostics(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict[str, str]:
        """The first diagnostics received from now on that satisfies `predicate`."""
        with self.lock:
            start = len(self.got.diagnostics)
            found: list[dict[str, str]] = []

            def check() -> bool:
                found[:] = [d for d in self.got.diagnostics[start:] if predicate(d)]
                return bool(found)

            if not self.lock.wait_for(check, timeout):
                last = self.got.diagnostics[-1] if self.got.diagnostics else None
                raise TimeoutError(f"no matching diagnostics within {timeout} s; last: {last}")
            return found[0]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(5.0)
        self.node.destroy_node()
