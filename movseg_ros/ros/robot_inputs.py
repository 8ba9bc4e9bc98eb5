"""What the robot adds to a colour frame: registered depth with intrinsics, and the camera's rotation.

Messages are paired by stamp in our own code (message_filters has no wheel here). Depth and
CameraInfo messages are kept briefly; each colour frame takes the depth image nearest its stamp
within a tolerance. Depth is used only when it is registered to the colour camera: its CameraInfo,
scaled to the colour image's size, matches the colour CameraInfo (e.g. a driver's aligned depth),
or there is no colour CameraInfo and the depth's is taken as the colour camera's. A frame gets no
depth otherwise, with a counted reason.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, Imu

from movseg_ros.camera_model import Intrinsics
from movseg_ros.geometry3d import depth_to_metres, resize_depth
from movseg_ros.image_bytes import ImageDecodeError, decode_image_bytes
from movseg_ros.ros.image_codec import stamp_ns_of
from movseg_ros.rotation_prior import GyroIntegrator, OdometryOrientations, frame_rotation
from movseg_ros.safe_text import printable

KEEP_DEPTH = 8  # depth images kept for pairing (a few frames at camera rates)
SAME_INTRINSICS_PX = 1.0  # focal lengths and principal points within this many (colour) pixels match


@dataclass(frozen=True)
class DepthMatch:
    """Depth for one colour frame (metres at the colour size, NaN unknown) and its intrinsics, or why not."""

    depth: np.ndarray | None
    intrinsics: Intrinsics | None
    problem: str | None  # "missing", "stale", "unregistered", "encoding", "size", "no camera_info"


def depth_pixels(msg: Image) -> np.ndarray:
    """HxW native uint16 (16UC1) or float32 (32FC1) from a depth Image, honouring step and byte order."""
    if msg.encoding == "16UC1":
        return decode_image_bytes(msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian)
    if msg.encoding != "32FC1":
        raise ValueError(f"depth encoding '{printable(msg.encoding)}' is not 16UC1 or 32FC1")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    raw = np.frombuffer(msg.data, np.uint8)
    if h < 1 or w < 1 or step < 4 * w or raw.size < step * h:
        raise ValueError(f"32FC1 depth {w}x{h} with step {step} needs {step * h} bytes, has {raw.size}")
    rows = raw[: step * h].reshape(h, step)[:, : 4 * w]
    return np.ascontiguousarray(rows).view(">f4" if msg.is_bigendian else "<f4").reshape(h, w).astype(np.float32)


def intrinsics_of(msg: CameraInfo) -> Intrinsics | None:
    """The pinhole intrinsics of a CameraInfo, None when K is unset (all zeros) or invalid."""
    try:
        return Intrinsics.from_k(list(msg.k), int(msg.width), int(msg.height))
    except ValueError:
        return None


def same_camera(a: Intrinsics, b: Intrinsics) -> bool:
    """True when `a`, scaled to `b`'s size, is `b` within SAME_INTRINSICS_PX (a registered depth camera)."""
    if abs(a.width / a.height - b.width / b.height) > 0.01:
        return False
    s = a.scaled(b.width, b.height)
    return max(abs(s.fx - b.fx), abs(s.fy - b.fy), abs(s.cx - b.cx), abs(s.cy - b.cy)) <= SAME_INTRINSICS_PX


class DepthPairing:
    """Recent depth images and camera infos from the callbacks; `match` pairs one with a colour frame."""

    def __init__(self, tolerance_s: float) -> None:
        self.tolerance_ns = int(tolerance_s * 1e9)
        self._depth: deque[Image] = deque(maxlen=KEEP_DEPTH)
        self._depth_info: Intrinsics | None = None
        self._colour_info: Intrinsics | None = None
        self._lock = threading.Lock()

    def add_depth(self, msg: Image) -> None:
        with self._lock:
            self._depth.append(msg)

    def add_depth_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._depth_info = intrinsics_of(msg)

    def add_colour_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._colour_info = intrinsics_of(msg)

    def colour_intrinsics(self, width: int, height: int) -> Intrinsics | None:
        """The colour camera's intrinsics at this image size (the colour CameraInfo, else the depth's)."""
        with self._lock:
            k = self._colour_info or self._depth_info
        if k is None or abs(k.width / k.height - width / height) > 0.01:
            return None
        return k.scaled(width, height)

    def match(self, stamp_ns: int, width: int, height: int) -> DepthMatch:
        """The depth nearest `stamp_ns`, registered and at `width` x `height`, or the reason there is none."""
        with self._lock:
            candidates = list(self._depth)
            depth_info, colour_info = self._depth_info, self._colour_info
        k = self.colour_intrinsics(width, height)
        if not candidates:
            return DepthMatch(None, k, "missing")
        nearest = min(candidates, key=lambda m: abs(stamp_ns_of(m.header) - stamp_ns))
        if abs(stamp_ns_of(nearest.header) - stamp_ns) > self.tolerance_ns:
            return DepthMatch(None, k, "stale")
        if depth_info is None or k is None:
            return DepthMatch(None, k, "no camera_info")
        if colour_info is not None and not same_camera(depth_info, colour_info):
            return DepthMatch(None, k, "unregistered")
        try:
            metres = depth_to_metres(depth_pixels(nearest), nearest.encoding)
        except (ImageDecodeError, ValueError):
            return DepthMatch(None, k, "encoding")
        if abs(metres.shape[1] / metres.shape[0] - width / height) > 0.01:
            return DepthMatch(None, k, "size")
        if metres.shape != (height, width):
            metres = resize_depth(metres, width, height)
        return DepthMatch(np.ascontiguousarray(metres, np.float32), k, None)

    def describe(self, problem: str) -> str:
        """A log line's worth on a pairing problem."""
        return {
            "missing": "no depth image received yet on 'depth/image'",
            "stale": f"no depth image within {self.tolerance_ns * 1e-9:g} s of the colour frame's stamp",
            "no camera_info": "no usable CameraInfo yet on 'depth/camera_info' (or 'camera_info')",
            "unregistered": "the depth camera's intrinsics differ from the colour camera's: depth is not registered "
                            "to colour (use the driver's aligned depth)",
            "encoding": "the depth image is not 16UC1 (mm) or 32FC1 (m), or is malformed",
            "size": "the depth image's aspect ratio differs from the colour image's",
        }.get(problem, printable(problem))


class RotationSource:
    """The camera's rotation between two stamps from a gyro (Imu) and/or odometry, mounted as
    `camera_from_sensor`; the gyro wins when both cover the interval."""

    def __init__(self, camera_from_sensor: np.ndarray, use_imu: bool, use_odometry: bool) -> None:
        self.camera_from_sensor = camera_from_sensor
        self.gyro = GyroIntegrator() if use_imu else None
        self.odometry = OdometryOrientations() if use_odometry else None
        self._lock = threading.Lock()  # callbacks add, the worker reads
        self.rejected = 0  # samples refused (non-finite rates, a zero quaternion)

    def add_imu(self, msg: Imu) -> None:
        if self.gyro is not None:
            w = msg.angular_velocity
            self._add(self.gyro, stamp_ns_of(msg.header), np.array([w.x, w.y, w.z]))

    def add_odometry(self, msg: Odometry) -> None:
        if self.odometry is not None:
            q = msg.pose.pose.orientation
            self._add(self.odometry, stamp_ns_of(msg.header), np.array([q.x, q.y, q.z, q.w]))

    def _add(self, source: GyroIntegrator | OdometryOrientations, stamp_ns: int, value: np.ndarray) -> None:
        """One sample; a malformed one is counted and dropped (a callback must never raise)."""
        with self._lock:
            try:
                source.add(stamp_ns, value)
            except ValueError:
                self.rejected += 1

    def frame_rotation(self, t0_ns: int, t1_ns: int) -> np.ndarray | None:
        """`Frame.rotation` for a frame at t1 after one at t0, None when neither input covers [t0, t1]
        (or t1 is not after t0: a stream going back has no rotation to give)."""
        if t1_ns <= t0_ns:
            return None
        for source in (self.gyro, self.odometry):
            if source is None:
                continue
            with self._lock:
                change = source.rotation(t0_ns, t1_ns)
            if change is not None:
                return frame_rotation(change, self.camera_from_sensor)
        return None
