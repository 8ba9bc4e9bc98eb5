"""A synthetic moving-camera clip with known truth: one mover, one object that stops, one static.

The camera pans, zooms and rolls over a richly textured world so that optical flow is
well-posed everywhere; objects are textured blobs composited with the camera transform plus
their own world motion, and the truth (ids, moving flags) is the exact rendering.

The 3D reading (depth, intrinsics, rotations, centroids) puts the world on a fronto-parallel plane
and each object on a fronto-parallel card nearer the camera, seen by a pinhole camera of focal
`focal_px` with its principal point at (w/2, h/2), the point the zoom and roll turn about. The pan
is a yaw (horizontal) and pitch (vertical) of the camera, the roll a rotation about its optical axis,
and a zoom factor s the camera dollying in so every depth is divided by s (intrinsics stay fixed).
Roll and zoom are exact; the pan is exact to first order (the picture is shifted, not warped as a
true rotation would warp it), so the rotation homography is right to a fraction of a pixel per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from movseg_ros.camera_model import Intrinsics

# Where things sit in the reference view (camera at rest), as fractions of (width, height).
_STATIC_AT = (0.20, 0.71)
_STOPPER_CIRCLE = (0.765, 0.30, 0.045)  # centre x, centre y, radius (fraction of width)
_MOVER_ELLIPSE = (0.475, 0.525, 0.14, 0.04, 0.62)  # centre x, y; semi-axes (fraction of width); angle (rad)
_BLOB_HARMONICS = ((3, 0.25), (2, 0.06))  # (harmonic, relative amplitude) of the outline


@dataclass(frozen=True)
class SceneConfig:
    """Size, length and motions of the clip; pixel speeds are at the configured resolution."""

    width: int = 640
    height: int = 480
    frames: int = 60
    fps: float = 30.0
    seed: int = 0
    stop_frame: int = 30  # frame at which the "stopper" object stops (stays still in the world after)
    pan_speed: float = 3.0  # peak horizontal camera pan, px/frame
    pan_amplitude: float = 0.05  # horizontal pan excursion, fraction of width
    zoom_amplitude: float = 0.02  # relative scale excursion of the camera
    roll_degrees: float = 1.0  # camera roll excursion
    mover_speed: float = 5.0  # px/frame relative to the world, constant along its path
    mover_spin: float = 0.5  # degrees/frame of the mover's own rotation
    stopper_speed: float = 4.0  # px/frame relative to the world until stop_frame
    object_area: float = 0.035  # each object's world area, fraction of the image (zoom varies it +-4 %)
    noise_sigma: float = 2.0  # sensor noise, grey levels
    focal_px: float = 525.0  # pinhole focal length, px at the configured size (fx = fy); scale it to keep the FOV
    background_depth: float = 5.0  # metres from the camera at rest to the world plane
    static_depth: float = 3.5  # metres to each object's card; nearer objects are painted on top, so
    stopper_depth: float = 3.0  # mover <= stopper <= static < background
    mover_depth: float = 2.5

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 48:
            raise ValueError(f"scene must be at least 64x48, got {self.width}x{self.height}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if not 0.01 <= self.object_area <= 0.06:
            raise ValueError(f"object_area must be in [0.01, 0.06], got {self.object_area}")
        for name in ("focal_px", "background_depth", "static_depth", "stopper_depth", "mover_depth"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        order = ("mover_depth", "stopper_depth", "static_depth")  # painting order, last painted first
        for near, far in zip(order, order[1:]):
            if getattr(self, near) > getattr(self, far):
                raise ValueError(f"{near} ({getattr(self, near)}) must not exceed {far} ({getattr(self, far)}): "
                                 f"the {near.split('_')[0]} is painted over the {far.split('_')[0]}")
        if self.static_depth >= self.background_depth:
            raise ValueError(f"background_depth ({self.background_depth}) must exceed every object's depth "
                             f"(static_depth {self.static_depth})")


@dataclass
class Scene:
    """The rendered clip and its truth, frame by frame."""

    frames: list[np.ndarray]  # HxWx3 uint8 RGB
    ids: list[np.ndarray]  # HxW uint16 truth instance ids, 0 = background
    moving: list[dict[int, bool]]  # per frame: object id -> moving relative to the world (not the camera)
    roles: dict[str, int]  # {"mover": id, "stopper": id, "static": id}
    fps: float
    intrinsics: Intrinsics  # the pinhole camera of every frame
    depth: list[np.ndarray]  # HxW float32 metres: the world plane or the object covering the pixel
    rotations: list[np.ndarray]  # 3x3 camera rotation since the previous frame (Frame.rotation); I at 0
    angular_velocity: list[np.ndarray]  # (3,) rad/s in the optical frame at each frame, as a gyro reads it
    centroids: list[dict[int, np.ndarray]]  # per frame: object id -> (3,) mean of its visible pixels in 3D


ROLE_IDS = {"mover": 1, "stopper": 2, "static": 3}


def camera_transform(config: SceneConfig, t: int) -> np.ndarray:
    """2x3 affine mapping world coordinates to frame t's pixels (the camera's pose at t)."""
    pan, scale, roll = _camera_motion(config, t)
    lin = scale * _rotation(roll)
    centre = np.array([config.width / 2.0, config.height / 2.0])
    return np.hstack([lin, (centre - lin @ (centre + pan))[:, None]])


def camera_orientation(config: SceneConfig, t: float) -> np.ndarray:
    """3x3 rotation from the camera at rest to the camera at time t (frames): a point X in the rest
    frame is R @ X at t. The pan is read as yaw and pitch, then the roll turns about the optical axis."""
    pan, _, roll = _camera_motion(config, t)
    yaw, pitch = math.atan2(pan[0], config.focal_px), math.atan2(pan[1], config.focal_px)
    return _axis_rotation(2, roll) @ _axis_rotation(0, pitch) @ _axis_rotation(1, -yaw)


def camera_angular_velocity(config: SceneConfig, t: float) -> np.ndarray:
    """(3,) rad/s the camera turns at time t (frames), in its optical frame as a gyro reads it; world points
    then move as -w x X in the camera frame (a pan to the right, image moving left, is +y)."""
    step = 1e-3  # frames, for a central difference of the orientation
    turn = camera_orientation(config, t + step) @ camera_orientation(config, t - step).T
    return -_rotation_vector(turn) * config.fps / (2.0 * step)


def _camera_motion(config: SceneConfig, t: float) -> tuple[np.ndarray, float, float]:
    """The camera's pan (px, in the rest view), zoom factor and roll (radians) at time t (frames)."""
    w, h = config.width, config.height
    phase = np.random.default_rng([config.seed, 0]).uniform(0.0, 2.0 * math.pi, 4)
    ax = config.pan_amplitude * w
    ay = 0.5 * config.pan_amplitude * h
    wx = config.pan_speed / ax if ax > 0 else 0.0
    pan = np.array([ax * math.sin(wx * t + phase[0]), ay * math.sin(0.7 * wx * t + phase[1])])
    scale = 1.0 + config.zoom_amplitude * math.sin(2.0 * math.pi * t / 90.0 + phase[2])
    roll = math.radians(config.roll_degrees) * math.sin(2.0 * math.pi * t / 120.0 + phase[3])
    return pan, scale, roll


def scene_intrinsics(config: SceneConfig) -> Intrinsics:
    """The scene's pinhole camera: focal_px, principal point at (w/2, h/2) where zoom and roll are centred."""
    w, h = config.width, config.height
    return Intrinsics(config.focal_px, config.focal_px, w / 2.0, h / 2.0, w, h)


def object_pose(config: SceneConfig, role: str, t: int) -> tuple[np.ndarray, float]:
    """World position (x, y) and rotation (radians) of an object's centre at frame t."""
    w, h = config.width, config.height
    phase = np.random.default_rng([config.seed, 1]).uniform(0.0, 2.0 * math.pi, 2)
    if role == "static":
        return np.array([_STATIC_AT[0] * w, _STATIC_AT[1] * h]), 0.0
    if role == "stopper":
        cx, cy, r = _STOPPER_CIRCLE
        angle = phase[0] + config.stopper_speed * min(t, config.stop_frame) / (r * w)
        return np.array([cx * w + r * w * math.cos(angle), cy * h + r * w * math.sin(angle)]), 0.0
    if role == "mover":
        cx, cy, a, b, tilt = _MOVER_ELLIPSE
        centre = np.array([cx * w, cy * h])
        offset = _ellipse_at_arclength(a * w, b * w, config.mover_speed * t, phase[1])
        return centre + _rotation(tilt) @ offset, math.radians(config.mover_spin) * t
    raise ValueError(f"unknown role '{role}' (known: {', '.join(ROLE_IDS)})")


def is_moving(config: SceneConfig, role: str, t: int) -> bool:
    """Whether the object moves in the world between frame t and t + 1."""
    return role == "mover" or (role == "stopper" and t < config.stop_frame)


def make_scene(config: SceneConfig = SceneConfig()) -> Scene:
    """Render the clip; deterministic in config (seed included)."""
    w, h = config.width, config.height
    cameras = [camera_transform(config, t) for t in range(config.frames)]
    origin, world = _world_canvas(config, cameras)
    sprites = {role: _object_sprite(config, role) for role in ("static", "stopper", "mover")}
    noise = _SensorNoise(np.random.default_rng([config.seed, 2]), config.noise_sigma)
    shift = np.array([[1.0, 0.0, origin[0]], [0.0, 1.0, origin[1]], [0.0, 0.0, 1.0]])
    k = scene_intrinsics(config)
    frames, ids, moving, depth, centroids = [], [], [], [], []
    for t, cam in enumerate(cameras):
        cam3 = np.vstack([cam, [0.0, 0.0, 1.0]])
        image = cv2.warpAffine(world, (cam3 @ shift)[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        id_map = np.zeros((h, w), np.uint16)
        for role, (rgb, alpha) in sprites.items():
            position, angle = object_pose(config, role, t)
            _composite(image, id_map, rgb, alpha, cam3 @ _pose_matrix(position, angle, alpha.shape), ROLE_IDS[role])
        frames.append(noise.add(image))
        ids.append(id_map)
        moving.append({ROLE_IDS[r]: is_moving(config, r, t) for r in ROLE_IDS})
        truth = _depth_truth(config, id_map, _camera_motion(config, t)[1], k)
        depth.append(truth[0])
        centroids.append(truth[1])
    turns = [camera_orientation(config, t) for t in range(config.frames)]
    rotations = [np.eye(3)] + [b @ a.T for a, b in zip(turns, turns[1:])]
    return Scene(frames=frames, ids=ids, moving=moving, roles=dict(ROLE_IDS), fps=config.fps, intrinsics=k,
                 depth=depth, rotations=rotations,
                 angular_velocity=[camera_angular_velocity(config, t) for t in range(config.frames)],
                 centroids=centroids)


def _depth_truth(config: SceneConfig, id_map: np.ndarray, scale: float, k: Intrinsics
                 ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The HxW float32 depth (metres) at zoom `scale`, the world plane or the card painted there, and
    object id -> mean 3D point of its visible pixels; a card has one depth, so its mean is its pixels' mean."""
    depth = np.full(id_map.shape, config.background_depth / scale, np.float32)
    centroids = {}
    for role, oid in ROLE_IDS.items():
        mask = id_map == oid
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
        m = cv2.moments(mask[y : y + h, x : x + w].view(np.uint8), binaryImage=True)  # cropped: 10x faster
        if m["m00"] > 0:
            z = np.float32(getattr(config, f"{role}_depth") / scale)
            depth[mask] = z
            mean_u, mean_v = x + m["m10"] / m["m00"], y + m["m01"] / m["m00"]
            centroids[oid] = float(z) * np.array([(mean_u - k.cx) / k.fx, (mean_v - k.cy) / k.fy, 1.0])
    return depth, centroids


class _SensorNoise:
    """Gaussian pixel noise drawn through a 256-entry quantile table: ~4x faster than normal()."""

    def __init__(self, rng: np.random.Generator, sigma: float) -> None:
        self.rng = rng
        quantiles = [NormalDist(0.0, sigma).inv_cdf((k + 0.5) / 256.0) for k in range(256)] if sigma > 0 else [0.0]
        self.table = np.asarray(quantiles, np.float32)

    def add(self, image: np.ndarray) -> np.ndarray:
        if self.table.size == 1:
            return image
        draws = np.frombuffer(self.rng.bytes(image.size), np.uint8).reshape(image.shape)
        return cv2.add(image, self.table[draws], dtype=cv2.CV_8U)


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    """3x3 right-handed rotation by `angle` radians about coordinate axis 0 (x), 1 (y) or 2 (z)."""
    out = np.eye(3)
    i, j = {0: (1, 2), 1: (2, 0), 2: (0, 1)}[axis]  # the plane it turns, in right-handed order
    out[np.ix_([i, j], [i, j])] = _rotation(angle)
    return out


def _rotation_vector(r: np.ndarray) -> np.ndarray:
    """(3,) axis times angle of a 3x3 rotation (under pi); exact for tiny angles, which cv2.Rodrigues zeroes."""
    sin_axis = 0.5 * np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    sin = float(np.linalg.norm(sin_axis))
    angle = math.atan2(sin, 0.5 * (float(np.trace(r)) - 1.0))
    return sin_axis * (angle / sin) if sin > 0 else sin_axis


def _ellipse_at_arclength(a: float, b: float, distance: float, start: float) -> np.ndarray:
    """Point on an axis-aligned ellipse reached after `distance` along it, so speed is constant."""
    theta = np.linspace(0.0, 2.0 * math.pi, 721) + start
    pts = np.stack([a * np.cos(theta), b * np.sin(theta)], axis=1)
    arclength = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    s = distance % arclength[-1]
    return np.array([np.interp(s, arclength, pts[:, 0]), np.interp(s, arclength, pts[:, 1])])


def _pose_matrix(position: np.ndarray, angle: float, sprite_shape: tuple[int, ...]) -> np.ndarray:
    """3x3 map from sprite pixels to world: rotate about the sprite centre, then place it."""
    centre = np.array([(sprite_shape[1] - 1) / 2.0, (sprite_shape[0] - 1) / 2.0])
    rot = _rotation(angle)
    out = np.eye(3)
    out[:2, :2] = rot
    out[:2, 2] = position - rot @ centre
    return out


def _composite(
    image: np.ndarray, id_map: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, m: np.ndarray, oid: int
) -> None:
    """Warp a sprite by the 3x3 sprite-to-pixel map m and paint it (colour and id) where it covers."""
    h, w = id_map.shape
    sh, sw = alpha.shape
    corners = m[:2] @ np.array([[0, sw, 0, sw], [0, 0, sh, sh], [1, 1, 1, 1]], np.float64)
    x0, y0 = (max(0, int(math.floor(v)) - 1) for v in corners.min(axis=1))
    x1, y1 = min(w, int(math.ceil(corners[0].max())) + 2), min(h, int(math.ceil(corners[1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    roi = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ m
    size = (x1 - x0, y1 - y0)
    cover = cv2.warpAffine(alpha, roi[:2], size, flags=cv2.INTER_LINEAR) > 127
    colour = cv2.warpAffine(rgb, roi[:2], size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    image[y0:y1, x0:x1][cover] = colour[cover]
    id_map[y0:y1, x0:x1][cover] = oid


def _world_canvas(config: SceneConfig, cameras: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The textured world covering every view of the clip, and its origin in world coordinates."""
    w, h = config.width, config.height
    corners = np.array([[0, w, 0, w], [0, 0, h, h], [1, 1, 1, 1]], np.float64)
    seen = []
    for cam in cameras:
        inv = cv2.invertAffineTransform(cam)
        seen.append(inv @ corners)
    pts = np.concatenate(seen, axis=1)
    origin = np.floor(pts.min(axis=1)) - 4.0
    far = np.ceil(pts.max(axis=1)) + 4.0
    size = (int(far[0] - origin[0]), int(far[1] - origin[1]))
    return origin, _background_texture(np.random.default_rng([config.seed, 3]), size[1], size[0])


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int, channels: int) -> np.ndarray:
    """Zero-mean noise in [-0.5, 0.5] that varies over about `cell` pixels."""
    gh, gw = h // cell + 3, w // cell + 3
    grid = rng.random((gh, gw, channels), dtype=np.float32) - 0.5
    up = cv2.resize(grid, (gw * cell, gh * cell), interpolation=cv2.INTER_CUBIC)
    return up.reshape(gh * cell, gw * cell, channels)[cell : cell + h, cell : cell + w]


def _background_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Muted multi-scale noise with random shapes and edges: texture at every scale and place."""
    base = np.array([110.0, 105.0, 95.0], np.float32)
    img = base + 90.0 * _smooth_noise(rng, h, w, 120, 3) + 50.0 * _smooth_noise(rng, h, w, 40, 3)
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(120 * h * w / (640 * 480))):
        colour = tuple(int(c) for c in rng.integers(40, 200, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        size = int(rng.integers(6, 40))
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.circle(canvas, (x, y), size, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(canvas, (x, y), (x + size, y + int(rng.integers(4, 40))), colour, -1)
        elif kind == 2:
            end = (x + int(rng.integers(-80, 80)), y + int(rng.integers(-80, 80)))
            cv2.line(canvas, (x, y), end, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        else:
            axes = (size, int(rng.integers(4, 30)))
            cv2.ellipse(canvas, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, 2, cv2.LINE_AA)
    fine = 40.0 * _smooth_noise(rng, h, w, 8, 1) + 30.0 * _smooth_noise(rng, h, w, 3, 1)
    return np.clip(canvas.astype(np.float32) + fine, 0, 255).astype(np.uint8)


def _blob_outline(rng: np.random.Generator, area: float) -> np.ndarray:
    """Closed non-convex outline (Nx2, centred at 0) of the given area: a circle with harmonics."""
    theta = np.linspace(0.0, 2.0 * math.pi, 240, endpoint=False)
    radius = np.ones_like(theta)
    for k, amp in _BLOB_HARMONICS:
        radius += amp * np.cos(k * theta + rng.uniform(0.0, 2.0 * math.pi))
    pts = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    x, y = pts[:, 0], pts[:, 1]
    unit_area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return pts * math.sqrt(area / unit_area)


def _object_sprite(config: SceneConfig, role: str) -> tuple[np.ndarray, np.ndarray]:
    """An object's texture (RGB) and coverage (uint8 0/255), each role with its own look."""
    rng = np.random.default_rng([config.seed, 4, ROLE_IDS[role]])
    outline = _blob_outline(rng, config.object_area * config.width * config.height)
    half = int(math.ceil(np.abs(outline).max())) + 3
    size = 2 * half + 1
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    fine = 30.0 * _smooth_noise(rng, size, size, 3, 1)[..., 0]
    if role == "mover":  # warm diagonal stripes
        stripes = np.sin((xx + yy) * float(rng.uniform(0.25, 0.35)))
        rgb = np.stack([200 + 40 * stripes, 90 + 60 * stripes, 40 + 20 * stripes], axis=-1)
    elif role == "stopper":  # blue-cyan checkerboard
        cell = int(rng.integers(7, 11))
        check = (((xx // cell) + (yy // cell)) % 2) * 2.0 - 1.0
        rgb = np.stack([40 + 20 * check, 110 + 60 * check, 210 + 30 * check], axis=-1)
    else:  # green-yellow spots
        spots = np.zeros((size, size), np.float32)
        for _ in range(40):
            centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            cv2.circle(spots, centre, int(rng.integers(3, 9)), 1.0, -1, cv2.LINE_AA)
        rgb = np.stack([90 + 140 * spots, 190 - 20 * spots, 60 + 10 * spots], axis=-1)
    rgb = np.clip(rgb + fine[..., None], 0, 255).astype(np.uint8)
    poly = np.round((outline + half) * 16).astype(np.int32)
    alpha = np.zeros((size, size), np.uint8)
    cv2.fillPoly(alpha, [poly], 255, cv2.LINE_8, shift=4)
    edge = tuple(int(c) for c in (np.asarray(rgb.reshape(-1, 3).mean(axis=0)) * 0.35))
    cv2.polylines(rgb, [poly], True, edge, 3, cv2.LINE_AA, shift=4)
    return rgb, alpha
