"""The camera's rotation between frames from the robot (gyro or odometry), as a homography prior.

Conventions (all rotations are 3x3 matrices):

* A sensor's *orientation change* between stamps t0 and t1 is S0^T S1, where S is the sensor's
  orientation in a fixed world (world-from-sensor). It is what a gyro integrates (body-frame
  angular velocity) and what two odometry orientations give; it maps vectors given in the sensor
  frame at t1 to the sensor frame at t0. `GyroIntegrator.rotation` and `OdometryOrientations.rotation`
  return it.
* `Frame.rotation` is the opposite direction: a point X (fixed in the world) in the previous camera
  frame is R @ X in the current one, so R is the *transposed* orientation change of the camera.
  `frame_rotation` makes it from a sensor's orientation change.
* The camera-from-sensor rotation C maps vectors in the sensor frame to the camera's optical frame
  (x right, y down, z forward): v_camera = C @ v_sensor. It is the rotation a tf from the optical
  frame (parent) to the sensor frame (child) carries.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from movseg_ros.camera_model import Intrinsics

# Camera-from-body for a camera looking along a REP-103 body frame's x axis (body: x forward, y left,
# z up; optical: x right, y down, z forward): optical x = -body y, optical y = -body z, optical z = body x.
OPTICAL_FROM_BODY = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
# The same rotation as (roll, pitch, yaw) degrees for rotation_from_rpy_degrees: one of the equivalent triples
# at pitch -90 (roll and yaw share an axis there). Its inverse, body to optical, is the familiar (-90, 0, -90).
OPTICAL_FROM_BODY_RPY_DEGREES = (0.0, -90.0, 90.0)


def rotation_homography(rotation: np.ndarray, k: Intrinsics) -> np.ndarray:
    """K R K^-1: where a previous-frame pixel lands in this frame when the camera only rotates (R as Frame.rotation)."""
    m = k.matrix
    return m @ np.asarray(rotation, np.float64) @ np.linalg.inv(m)


def rotation_from_rpy_degrees(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rz(yaw) Ry(pitch) Rx(roll), angles in degrees: the URDF / tf2 fixed-axis x-y-z convention.

    Roll turns about x first, then pitch about the fixed y, then yaw about the fixed z; the result
    maps child-frame vectors into the parent frame, as `static_transform_publisher --roll --pitch --yaw` does.
    """
    r, p, y = (math.radians(float(a)) for a in (roll, pitch, yaw))
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    return rz @ ry @ rx


def camera_rotation(r_sensor: np.ndarray, r_camera_from_sensor: np.ndarray) -> np.ndarray:
    """C R C^T: a rotation given in the sensor frame (e.g. its orientation change) expressed in the camera frame."""
    c = np.asarray(r_camera_from_sensor, np.float64)
    return c @ np.asarray(r_sensor, np.float64) @ c.T


def frame_rotation(sensor_change: np.ndarray, r_camera_from_sensor: np.ndarray) -> np.ndarray:
    """`Frame.rotation` from a rigidly mounted sensor's orientation change (S0^T S1) between the two frames' stamps.

    The camera turns as its mount does; points in the world turn the other way in its view, hence the transpose.
    """
    return camera_rotation(sensor_change, r_camera_from_sensor).T


def so3_exp(rotation_vector: np.ndarray) -> np.ndarray:
    """The rotation of angle |w| about w (Rodrigues); the exponential map of so(3)."""
    w = np.asarray(rotation_vector, np.float64)
    angle = float(np.linalg.norm(w))
    wx = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    if angle < 1e-8:
        return np.eye(3) + wx  # first order: exact to rounding at this size
    return np.eye(3) + math.sin(angle) / angle * wx + (1.0 - math.cos(angle)) / angle**2 * (wx @ wx)


def quaternion_matrix(quaternion_xyzw: np.ndarray) -> np.ndarray:
    """The rotation of a unit quaternion (x, y, z, w), as in geometry_msgs/Quaternion."""
    x, y, z, w = np.asarray(quaternion_xyzw, np.float64)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def slerp(q0: np.ndarray, q1: np.ndarray, fraction: float) -> np.ndarray:
    """The unit quaternion `fraction` of the way from q0 to q1 along the shorter arc."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q and -q are the same rotation: take the short way round
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly equal: linear interpolation is exact to rounding
        q = q0 + fraction * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = math.acos(dot)
    return (math.sin((1.0 - fraction) * theta) * q0 + math.sin(fraction * theta) * q1) / math.sin(theta)


class _StampedSamples:
    """Samples in stamp order, pruned to a time window; a stamp going back starts the history anew."""

    def __init__(self, window_s: float, max_gap_s: float, what: str) -> None:
        if not window_s > 0 or not max_gap_s > 0:
            raise ValueError(f"{what}: window_s and max_gap_s must be > 0, got {window_s} and {max_gap_s}")
        self.window_ns = round(window_s * 1e9)
        self.max_gap_ns = round(max_gap_s * 1e9)
        self.what = what
        self.stamps: deque[int] = deque()
        self.values: deque[np.ndarray] = deque()

    def add(self, stamp_ns: int, value: np.ndarray) -> None:
        """Append a sample; a repeated stamp is ignored, an older one (time went back) clears the history."""
        stamp_ns = int(stamp_ns)
        if self.stamps and stamp_ns == self.stamps[-1]:
            return
        if self.stamps and stamp_ns < self.stamps[-1]:
            self.clear()
        self.stamps.append(stamp_ns)
        self.values.append(value)
        while self.stamps[0] < stamp_ns - self.window_ns:
            self.stamps.popleft()
            self.values.popleft()

    def clear(self) -> None:
        self.stamps.clear()
        self.values.clear()

    def span(self, t0_ns: int, t1_ns: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The samples from the last at or before t0 to the first at or after t1, None when they leave a gap
        longer than max_gap (or do not reach t0, or end more than max_gap before t1: the sample after a
        frame's stamp has often not arrived when the frame is processed)."""
        if t1_ns < t0_ns:
            raise ValueError(f"{self.what}: interval ends before it starts ({t0_ns} > {t1_ns} ns)")
        stamps = np.fromiter(self.stamps, np.int64, len(self.stamps))
        if len(stamps) == 0 or stamps[0] > t0_ns or stamps[-1] < t1_ns - self.max_gap_ns:
            return None
        first = int(np.searchsorted(stamps, t0_ns, side="right")) - 1
        last = min(int(np.searchsorted(stamps, t1_ns, side="left")), len(stamps) - 1)
        chosen = stamps[first:last + 1]
        if len(chosen) > 1 and int(np.diff(chosen).max()) > self.max_gap_ns:
            return None
        return chosen, np.array([self.values[i] for i in range(first, last + 1)])


class GyroIntegrator:
    """The IMU's orientation change between two stamps, integrated from its angular velocity samples.

    Angular velocity (rad/s, sensor frame, as sensor_msgs/Imu) is taken as linear between samples;
    each piece between consecutive stamps turns by exp(mean rate * duration), composed in the body frame.
    Samples older than `window_s` behind the newest are dropped.
    """

    def __init__(self, window_s: float = 2.0, max_gap_s: float = 0.05) -> None:
        self._samples = _StampedSamples(window_s, max_gap_s, "gyro")

    def add(self, stamp_ns: int, angular_velocity_xyz: np.ndarray) -> None:
        """One gyro sample; its stamp must follow the previous one (a stamp going back clears the history)."""
        w = np.asarray(angular_velocity_xyz, np.float64).reshape(-1)
        if w.shape != (3,) or not np.isfinite(w).all():
            raise ValueError(f"gyro sample at {stamp_ns} ns: angular velocity must be 3 finite values, got {w}")
        self._samples.add(stamp_ns, w)

    def rotation(self, t0_ns: int, t1_ns: int) -> np.ndarray | None:
        """S(t0)^T S(t1), the sensor frame at t1 seen from the one at t0; None when the samples do not cover [t0, t1]."""
        span = self._samples.span(t0_ns, t1_ns)
        if span is None:
            return None
        stamps, rates = span
        if len(stamps) == 1:  # both ends fall on the one sample, or t1 just after it
            return so3_exp(rates[0] * (t1_ns - max(t0_ns, int(stamps[0]))) * 1e-9)
        cuts = np.clip(stamps, t0_ns, t1_ns).astype(np.float64)
        at = np.stack([np.interp(cuts, stamps, rates[:, k]) for k in range(3)], 1)  # rate at the clipped ends
        out = np.eye(3)
        for i in range(len(cuts) - 1):
            dt = (cuts[i + 1] - cuts[i]) * 1e-9
            if dt > 0:
                out = out @ so3_exp(0.5 * (at[i] + at[i + 1]) * dt)
        if cuts[-1] < t1_ns:  # the samples end just before t1: the last rate holds to it
            out = out @ so3_exp(at[-1] * (t1_ns - cuts[-1]) * 1e-9)
        return out

    def clear(self) -> None:
        """Forget every sample (a new stream)."""
        self._samples.clear()


class OdometryOrientations:
    """The robot's orientation change between two stamps from odometry orientations (slerp between samples).

    Quaternions (x, y, z, w) are the child frame's orientation in the odometry frame, as
    nav_msgs/Odometry pose.pose.orientation. Samples older than `window_s` behind the newest are dropped.
    """

    def __init__(self, window_s: float = 2.0, max_gap_s: float = 0.2) -> None:
        self._samples = _StampedSamples(window_s, max_gap_s, "odometry")

    def add(self, stamp_ns: int, quaternion_xyzw: np.ndarray) -> None:
        """One orientation; its stamp must follow the previous one (a stamp going back clears the history)."""
        q = np.asarray(quaternion_xyzw, np.float64).reshape(-1)
        norm = float(np.linalg.norm(q)) if q.shape == (4,) and np.isfinite(q).all() else 0.0
        if norm < 1e-6:
            raise ValueError(f"odometry orientation at {stamp_ns} ns must be a finite non-zero quaternion "
                             f"(x, y, z, w), got {q}")
        self._samples.add(stamp_ns, q / norm)

    def rotation(self, t0_ns: int, t1_ns: int) -> np.ndarray | None:
        """Q(t0)^T Q(t1), the child frame at t1 seen from the one at t0; None when the samples do not cover [t0, t1]."""
        span = self._samples.span(t0_ns, t1_ns)
        if span is None:
            return None
        stamps, quats = span
        return quaternion_matrix(_at(stamps, quats, t0_ns)).T @ quaternion_matrix(_at(stamps, quats, t1_ns))

    def clear(self) -> None:
        """Forget every sample (a new stream)."""
        self._samples.clear()


def _at(stamps: np.ndarray, quats: np.ndarray, t_ns: int) -> np.ndarray:
    """The orientation at t, slerped between the samples around it (t lies within the stamps)."""
    i = int(np.searchsorted(stamps, t_ns, side="right")) - 1
    if i >= len(stamps) - 1 or stamps[i] == t_ns:
        return quats[i]
    return slerp(quats[i], quats[i + 1], float(t_ns - stamps[i]) / float(stamps[i + 1] - stamps[i]))
