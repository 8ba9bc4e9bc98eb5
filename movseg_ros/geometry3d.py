"""Moving objects in 3D, ROS-free: metric depth, back-projection, each track's centroid, extent and
velocity, and a budgeted point cloud of chosen tracks.

Depth must be registered to the colour image the masks come from, and at its size: a caller with
depth at another resolution (a 320x240 depth camera beside a 640x480 colour one sharing its
viewpoint) brings it to the colour image's size with `resize_depth` before anything here; the
intrinsics are always the colour image's. Coordinates are REP-103 optical: x right, y down, z forward.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from movseg_ros.camera_model import Intrinsics
from movseg_ros.safe_text import printable

DEPTH_ENCODINGS = ("16UC1", "32FC1")  # REP-118: millimetres in uint16 (0 unknown), metres in float32
GEOMETRY_SAMPLES = 8192  # a track's depth median and extent come from at most this many of its pixels, evenly spread


def depth_to_metres(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """HxW float32 metres, NaN where unknown, from a REP-118 depth image: `16UC1` millimetres (0 unknown)
    or `32FC1` metres (NaN, inf and <= 0 unknown), so everything downstream sees one convention."""
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth encoding '{printable(encoding)}' is not supported; "
                         f"REP-118 depth is 16UC1 (millimetres) or 32FC1 (metres)")
    kind, size = ("u", 2) if encoding == "16UC1" else ("f", 4)  # either byte order
    if pixels.ndim != 2 or (pixels.dtype.kind, pixels.dtype.itemsize) != (kind, size):
        raise ValueError(f"{encoding} depth must be HxW {'uint16' if kind == 'u' else 'float32'}, "
                         f"got shape {pixels.shape} dtype {pixels.dtype}")
    if encoding == "16UC1":
        metres = pixels.astype(np.float32) * np.float32(0.001)
        metres[pixels == 0] = np.nan
        return metres
    with np.errstate(invalid="ignore"):
        unknown = ~(np.isfinite(pixels) & (pixels > 0))
    return np.where(unknown, np.float32(np.nan), pixels.astype(np.float32))


def resize_depth(depth_m: np.ndarray, width: int, height: int) -> np.ndarray:
    """Depth brought to `width` x `height` by nearest neighbour with pixel centres aligned (as
    Intrinsics.scaled), so no value is ever blended across an object's edge into mid-air."""
    if depth_m.ndim != 2 or width < 1 or height < 1:
        raise ValueError(f"resize_depth needs HxW depth and a positive size, got shape {depth_m.shape} "
                         f"to {width}x{height}")
    src_h, src_w = depth_m.shape
    cols = np.minimum(((np.arange(width) + 0.5) * (src_w / width)).astype(np.intp), src_w - 1)
    rows = np.minimum(((np.arange(height) + 0.5) * (src_h / height)).astype(np.intp), src_h - 1)
    return depth_m[np.ix_(rows, cols)].astype(np.float32, copy=False)


def backproject(us: np.ndarray, vs: np.ndarray, z: np.ndarray, k: Intrinsics) -> np.ndarray:
    """(N, 3) float32 camera-frame points of pixels (us, vs) at depths z (metres)."""
    z = np.asarray(z, np.float64)
    x = (np.asarray(us, np.float64) - k.cx) * z / k.fx
    y = (np.asarray(vs, np.float64) - k.cy) * z / k.fy
    return np.stack([x, y, z], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class Object3D:
    """One object in the camera frame: centroid and extent (axis-aligned size, 5th-95th percentile) in
    metres, velocity in m/s, and how many depth pixels gave them; `valid` False (all zeros) when too few."""

    centroid: np.ndarray
    extent: np.ndarray
    velocity: np.ndarray
    valid: bool
    points: int


def object_geometry(mask: np.ndarray, depth_m: np.ndarray, k: Intrinsics, min_points: int = 20,
                    depth_band: float = 0.15) -> Object3D:
    """The 3D centroid and extent of a mask's pixels with depth. Pixels further than `depth_band` x the
    mask's median depth from it are dropped first: a mask's edge bleeding onto the far background (or a
    nearer occluder) must not drag the centroid; the object is taken to cover most of its mask."""
    _check_shapes(mask, depth_m, k, "mask")
    vs, us = _nonzero_in_box(mask)
    z = depth_m[vs, us]
    known = np.isfinite(z)
    vs, us, z = vs[known], us[known], z[known]
    # a large mask's median and percentiles come from an even sample of its pixels (a bounded cost); its
    # centroid from all of them, since velocities difference centroids and a sample's jitter would show there
    step = max(1, -(-z.size // GEOMETRY_SAMPLES))
    if z.size:
        middle = np.median(z[::step])
        near = np.abs(z - middle) <= depth_band * middle
        vs, us, z = vs[near], us[near], z[near]
    if z.size < min_points:
        return _invalid(int(z.size))
    z64 = z.astype(np.float64)
    mean_z = z64.mean()
    centroid = np.array([(np.dot(us, z64) / z.size - k.cx * mean_z) / k.fx,
                         (np.dot(vs, z64) / z.size - k.cy * mean_z) / k.fy, mean_z])
    pts = backproject(us[::step], vs[::step], z[::step], k)
    low, high = np.percentile(pts, [5.0, 95.0], axis=0)
    return Object3D(centroid=centroid.astype(np.float32), extent=(high - low).astype(np.float32),
                    velocity=np.zeros(3, np.float32), valid=True, points=int(z.size))


class Track3DEstimator:
    """Each track's 3D geometry frame by frame, with its velocity in the camera frame from the change of
    centroid since the track's last valid sighting (zero on a first sighting or after a gap over
    `max_gap_s`). With the camera's rotation between frames (Frame.rotation, from an IMU or odometry)
    the remembered centroids are turned with it, so the camera's rotation drops out of the velocity;
    its translation stays in. It remembers only tracks seen within the gap."""

    def __init__(self, max_gap_s: float = 1.0, min_points: int = 20, depth_band: float = 0.15) -> None:
        if not max_gap_s > 0:
            raise ValueError(f"max_gap_s must be positive, got {max_gap_s}")
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.min_points = min_points
        self.depth_band = depth_band
        self._last: dict[int, tuple[int, np.ndarray]] = {}  # track id -> (stamp_ns, centroid)

    def update(self, stamp_ns: int, masks: Mapping[int, np.ndarray], depth_m: np.ndarray,
               k: Intrinsics, rotation: np.ndarray | None = None) -> dict[int, Object3D]:
        """Track id -> Object3D for this frame's masks (HxW bool each, registered to depth_m); `rotation`
        is the camera's since the previous update (a point X there is rotation @ X here), when known."""
        self.turn(rotation)
        self._last = {tid: seen for tid, seen in self._last.items() if 0 <= stamp_ns - seen[0] <= self.max_gap_ns}
        out = {}
        for tid, mask in masks.items():
            obj = object_geometry(mask, depth_m, k, self.min_points, self.depth_band)
            if obj.valid:
                before = self._last.get(tid)
                if before is not None and before[0] < stamp_ns:
                    step = (obj.centroid.astype(np.float64) - before[1]) / ((stamp_ns - before[0]) * 1e-9)
                    obj = replace(obj, velocity=step.astype(np.float32))
                self._last[tid] = (stamp_ns, obj.centroid.astype(np.float64))
            out[tid] = obj
        return out

    def turn(self, rotation: np.ndarray | None) -> None:
        """Express the remembered centroids in the camera frame after a rotation (a frame without depth
        still turns the camera: call this for it too)."""
        if rotation is None:
            return
        r = np.asarray(rotation, np.float64)
        self._last = {tid: (stamp, r @ c) for tid, (stamp, c) in self._last.items()}

    def forget(self, ids: Iterable[int]) -> None:
        """Drop ended tracks now (an id seen again starts over with zero velocity)."""
        for tid in ids:
            self._last.pop(tid, None)

    @property
    def remembered(self) -> int:
        """How many tracks are remembered (bounded by the tracks seen within max_gap_s)."""
        return len(self._last)


def sample_points(label_map: np.ndarray, ids: Iterable[int], depth_m: np.ndarray, k: Intrinsics,
                  budget: int) -> np.ndarray:
    """(N, 4) float32 [x, y, z, id] of pixels labelled with one of `ids` that have depth, at most `budget`
    of them, spread evenly over the image and the same for the same input: a regular pixel grid as fine
    as the budget allows, thinned evenly along the raster."""
    _check_shapes(label_map, depth_m, k, "label_map")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    wanted = np.isin(label_map, np.fromiter(ids, np.int64)) & np.isfinite(depth_m)
    count = int(np.count_nonzero(wanted))
    stride = max(1, math.isqrt(count // max(budget, 1)))
    while stride > 1 and np.count_nonzero(wanted[::stride, ::stride]) < budget:
        stride -= 1
    grid = wanted[::stride, ::stride]
    vs, us = np.nonzero(grid)
    if vs.size > budget:
        keep = np.round(np.linspace(0, vs.size - 1, budget)).astype(np.intp)
        vs, us = vs[keep], us[keep]
    vs, us = vs * stride, us * stride
    pts = backproject(us, vs, depth_m[vs, us], k)
    return np.concatenate([pts, label_map[vs, us].astype(np.float32)[:, None]], axis=1)


def _nonzero_in_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero(mask), searched only within the mask's bounding box (a track covers a small part of a frame)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    cols = np.flatnonzero(mask.any(axis=0))
    y0, x0 = rows[0], cols[0]
    vs, us = np.nonzero(mask[y0:rows[-1] + 1, x0:cols[-1] + 1])
    return vs + y0, us + x0


def _check_shapes(image: np.ndarray, depth_m: np.ndarray, k: Intrinsics, name: str) -> None:
    """Raise naming the input whose size disagrees with the depth image or the intrinsics."""
    if image.shape != depth_m.shape or depth_m.ndim != 2:
        raise ValueError(f"{name} shape {image.shape} differs from depth shape {depth_m.shape} "
                         f"(resize_depth the depth to the colour image first)")
    if (k.width, k.height) != (depth_m.shape[1], depth_m.shape[0]):
        raise ValueError(f"intrinsics are for {k.width}x{k.height}, depth is "
                         f"{depth_m.shape[1]}x{depth_m.shape[0]} (use Intrinsics.scaled)")


def _invalid(points: int) -> Object3D:
    """An Object3D too thin on depth to place."""
    zero = np.zeros(3, np.float32)
    return Object3D(centroid=zero, extent=zero.copy(), velocity=zero.copy(), valid=False, points=points)
