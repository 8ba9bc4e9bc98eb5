"""Fast-pan clips: a rotating camera over a far background, a large mover, the truth rotation and gyro samples.

The background lies at infinity (a photo panorama on the sphere of view directions), so the camera's
pure rotation moves it exactly by K R K^-1. One large textured object (30-60 % of the view) moves in
the image on its own. The camera's angular velocity is smooth; the gyro that would ride on it (a
REP-103 body frame looking along the camera, OPTICAL_FROM_BODY) samples it with noise and a bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from movseg_ros.camera_model import Intrinsics
from movseg_ros.ego_motion import predicted_flow
from movseg_ros.rotation_prior import OPTICAL_FROM_BODY, rotation_homography, so3_exp
from movseg_ros.synth.config import SynthConfig, SynthConfigError
from movseg_ros.synth.effects import SensorNoise
from movseg_ros.synth.objects import make_object
from movseg_ros.synth.textures import TextureBank, load_bank

SUBSTEPS = 32  # integration steps of the true orientation per frame interval
START_NS = 1_000_000_000  # stamp of the first frame
IMU_LEAD_S = 0.05  # gyro samples start this long before the first frame and end as long after the last


@dataclass(frozen=True)
class PanClipConfig:
    """What a fast-pan clip is drawn from; speeds are at the image centre, per frame."""

    width: int = 640
    height: int = 480
    frames: int = 24
    fps: float = 30.0
    focal: float = 1.0  # focal length, multiples of the width
    pan_px: tuple[float, float] = (10.0, 25.0)  # |pan| speed range, px/frame
    tilt_px: float = 6.0  # largest |tilt| speed, px/frame
    roll_deg: float = 0.8  # largest |roll| speed, deg/frame
    rate_wobble: float = 0.3  # each rate swings by up to this fraction of itself (a sinusoid of 0.5-1.5 s)
    object_area: tuple[float, float] = (0.3, 0.6)  # the mover's area, fraction of the view
    object_speed: tuple[float, float] = (0.0, 6.0)  # its own image motion, px/frame (the camera roughly follows it)
    imu_rate: float = 200.0  # gyro samples per second
    gyro_noise: float = 0.02  # white noise of each gyro sample, rad/s (standard deviation per axis)
    gyro_bias: float = 0.01  # largest |bias| per axis, rad/s (drawn per clip)
    noise_sigma: float = 2.0  # image sensor noise, grey levels
    texture_source: str = "auto"  # auto (DAVIS photos when present), davis or skimage

    def __post_init__(self) -> None:
        if not (32 <= self.width <= 4096 and 32 <= self.height <= 4096):
            raise SynthConfigError(f"pan clip width/height must be in [32, 4096], got {self.width}x{self.height}")
        if self.frames < 2:
            raise SynthConfigError(f"pan clip frames must be >= 2, got {self.frames}")
        lo, hi = self.pan_px
        if not 0.0 <= lo <= hi:
            raise SynthConfigError(f"pan clip pan_px must be a range 0 <= lo <= hi, got {self.pan_px}")
        lo, hi = self.object_area
        if not 0.0 < lo <= hi <= 0.9:
            raise SynthConfigError(f"pan clip object_area must lie in (0, 0.9], got {self.object_area}")
        for name in ("fps", "focal", "imu_rate"):
            if not getattr(self, name) > 0:
                raise SynthConfigError(f"pan clip {name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class PanClip:
    """T frames and their truth: instance ids (0 = background, 1 = the mover), rotations and gyro samples."""

    images: np.ndarray  # (T, H, W, 3) uint8 RGB
    instances: np.ndarray  # (T, H, W) int32
    rotations: np.ndarray  # (T, 3, 3) the true Frame.rotation of each frame ([0]: identity, no previous frame)
    intrinsics: Intrinsics
    stamps_ns: np.ndarray  # (T,) int64 frame stamps
    gyro_stamps_ns: np.ndarray  # (N,) int64
    gyro: np.ndarray  # (N, 3) angular velocity in the gyro's frame, rad/s, noise and bias included
    camera_from_sensor: np.ndarray  # (3, 3) v_camera = C v_gyro
    gyro_bias: np.ndarray  # (3,) the bias in the samples, rad/s
    seed: int
    config: PanClipConfig
    texture_source: str

    @property
    def background(self) -> np.ndarray:
        """(T, H, W) bool: pixels of the far background."""
        return self.instances == 0

    def truth_homography(self, t: int) -> np.ndarray:
        """Frame t-1's pixels to frame t's for the background: K R_t K^-1."""
        return rotation_homography(self.rotations[t], self.intrinsics)

    def steady_background(self, t: int, shape: tuple[int, int]) -> np.ndarray:
        """Pixels of frame t (resized to `shape`) showing background that frame t-1 showed as background too:
        where the flow between them is the camera's alone."""
        h, w = shape
        k = self.intrinsics.scaled(w, h)
        back = predicted_flow(np.linalg.inv(rotation_homography(self.rotations[t], k)), (h, w))  # to frame t-1
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        now = cv2.resize(self.background[t].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        before = cv2.resize(self.background[t - 1].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        came_from = cv2.remap(before, gx + back[..., 0], gy + back[..., 1], cv2.INTER_NEAREST, borderValue=0) > 0
        return now & came_from


def generate_pan_clip(config: PanClipConfig, seed: int, bank: TextureBank | None = None) -> PanClip:
    """Draw and render one clip; the same config, seed and texture source give the same clip."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SynthConfigError(f"pan clip seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    w, h = config.width, config.height
    if bank is None:
        bank = load_bank(config.texture_source, w, h)
    rng = np.random.default_rng([seed, 11])
    f = config.focal * w
    k = Intrinsics(f, f, (w - 1) / 2.0, (h - 1) / 2.0, w, h)
    rate = _angular_rate(rng, config, f)
    times = np.arange(config.frames) / config.fps
    orientations = _orientations(rate, times)
    rotations = np.stack([np.eye(3)] + [orientations[t].T @ orientations[t - 1] for t in range(1, config.frames)])
    panorama = _panorama(rng, bank, f)
    sprite = _object_sprite(rng, bank, config)
    poses = _object_poses(rng, config)
    noise = SensorNoise(np.random.default_rng([seed, 12]), config.noise_sigma)
    rays = _pixel_rays(k)
    images = np.empty((config.frames, h, w, 3), np.uint8)
    instances = np.empty((config.frames, h, w), np.int32)
    for t in range(config.frames):
        background = _view(panorama, rays, orientations[t], f)
        images[t], instances[t] = _composite(background, sprite, poses[t])
        images[t] = noise.add(images[t])
    gyro_stamps, gyro, bias = _gyro_samples(rng, config, rate, times)
    stamps = START_NS + np.round(times * 1e9).astype(np.int64)
    return PanClip(images, instances, rotations, k, stamps, START_NS + gyro_stamps, gyro, OPTICAL_FROM_BODY.copy(),
                   bias, seed, config, bank.source)


class _AngularRate:
    """The camera's angular velocity (rad/s, optical frame) at any time: per-axis base rate times a slow wobble."""

    def __init__(self, base: np.ndarray, wobble: np.ndarray, period: np.ndarray, phase: np.ndarray) -> None:
        self.base, self.wobble, self.period, self.phase = base, wobble, period, phase

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """(..., 3) rates at the times `t` (seconds from the first frame)."""
        t = np.asarray(t, np.float64)[..., None]
        return self.base * (1.0 + self.wobble * np.sin(2.0 * math.pi * t / self.period + self.phase))


def _angular_rate(rng: np.random.Generator, config: PanClipConfig, f: float) -> _AngularRate:
    """A fast pan (about y) with some tilt (about x) and roll (about z), each swinging slowly."""
    pan = rng.uniform(*config.pan_px) * (1 if rng.random() < 0.5 else -1)
    tilt = rng.uniform(-config.tilt_px, config.tilt_px)
    roll = math.radians(rng.uniform(-config.roll_deg, config.roll_deg))
    base = np.array([tilt / f, pan / f, roll]) * config.fps
    return _AngularRate(base, rng.uniform(0.0, config.rate_wobble, 3), rng.uniform(0.5, 1.5, 3),
                        rng.uniform(0.0, 2.0 * math.pi, 3))


def _orientations(rate: _AngularRate, times: np.ndarray) -> np.ndarray:
    """(T, 3, 3) world-from-camera orientations at `times`, the first the identity, integrated finely."""
    out = [np.eye(3)]
    for t0, t1 in zip(times[:-1], times[1:]):
        r = out[-1]
        dt = (t1 - t0) / SUBSTEPS
        for s in range(SUBSTEPS):
            r = r @ so3_exp(rate(t0 + (s + 0.5) * dt) * dt)
        out.append(r)
    return np.stack(out)


def _gyro_samples(rng: np.random.Generator, config: PanClipConfig, rate: _AngularRate,
                  times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stamps (ns after the first frame), samples in the gyro frame (noise and bias added), and the bias."""
    step = 1.0 / config.imu_rate
    start = -IMU_LEAD_S - rng.uniform(0.0, step)
    t = np.arange(start, times[-1] + IMU_LEAD_S, step)
    bias = rng.uniform(-config.gyro_bias, config.gyro_bias, 3)
    sensor = rate(t) @ OPTICAL_FROM_BODY  # C^T w for each row: the camera's rate in the gyro frame
    samples = sensor + bias + rng.normal(0.0, config.gyro_noise, sensor.shape)
    return np.round(t * 1e9).astype(np.int64), samples, bias


def _panorama(rng: np.random.Generator, bank: TextureBank, f: float) -> np.ndarray:
    """An equirectangular RGB picture of the far background (f px a radian, latitudes within +-1 rad) of bank photos."""
    pw, ph = round(2.0 * math.pi * f), round(2.0 * f)
    tile_h, tile_w = bank.photos[0].shape[:2]
    rows, cols = math.ceil(ph / tile_h), math.ceil(pw / tile_w)
    canvas = np.empty((rows * tile_h, cols * tile_w, 3), np.uint8)
    for r in range(rows):
        for c in range(cols):
            photo = bank.photos[int(rng.integers(len(bank.photos)))][..., :3]
            photo = cv2.resize(photo, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
            canvas[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = photo if rng.random() < 0.5 else photo[:, ::-1]
    return np.ascontiguousarray(canvas[:ph, :pw])


def _pixel_rays(k: Intrinsics) -> np.ndarray:
    """(H, W, 3) K^-1 (x, y, 1) of every pixel: its view direction in the camera frame."""
    xs, ys = np.meshgrid(np.arange(k.width, dtype=np.float64), np.arange(k.height, dtype=np.float64))
    return np.dstack([(xs - k.cx) / k.fx, (ys - k.cy) / k.fy, np.ones_like(xs)])


def _view(panorama: np.ndarray, rays: np.ndarray, orientation: np.ndarray, f: float) -> np.ndarray:
    """The background seen by a camera of world-from-camera `orientation`: each pixel's world direction looked up."""
    d = rays @ orientation.T
    lon = np.arctan2(d[..., 0], d[..., 2])
    lat = np.arctan2(d[..., 1], np.hypot(d[..., 0], d[..., 2]))
    ph, pw = panorama.shape[:2]
    map_x = (pw / 2.0 + f * lon).astype(np.float32)
    map_y = (ph / 2.0 + f * lat).astype(np.float32)
    return cv2.remap(panorama, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _object_sprite(rng: np.random.Generator, bank: TextureBank, config: PanClipConfig) -> tuple[np.ndarray, np.ndarray]:
    """The mover's RGBA picture and the 3x3 map from its pixels to its own frame (centred on it)."""
    look = SynthConfig(width=config.width, height=config.height, cutout_probability=0.5, parts_probability=0.0)
    area = rng.uniform(*config.object_area) * config.width * config.height
    part = make_object(rng, bank, look, area).parts[0]
    return part.rgba, part.to_object(0.0)


def _object_poses(rng: np.random.Generator, config: PanClipConfig) -> np.ndarray:
    """(T, 4) image poses (x, y, angle rad, scale): a slow drift that bounces inside the middle of the view."""
    w, h = config.width, config.height
    pose = np.array([rng.uniform(0.4, 0.6) * w, rng.uniform(0.4, 0.6) * h, rng.uniform(-0.2, 0.2), 1.0])
    speed, heading = rng.uniform(*config.object_speed), rng.uniform(0.0, 2.0 * math.pi)
    velocity = np.array([speed * math.cos(heading), speed * math.sin(heading),
                         math.radians(rng.uniform(-1.0, 1.0)), rng.uniform(-0.005, 0.005)])
    box = np.array([0.3 * w, 0.3 * h, 0.7 * w, 0.7 * h])
    out = [pose.copy()]
    for _ in range(config.frames - 1):
        pose = pose + velocity * np.array([1.0, 1.0, 1.0, pose[3]])
        for axis in (0, 1):
            if not box[axis] <= pose[axis] <= box[axis + 2]:
                velocity[axis] = -velocity[axis]
        out.append(pose.copy())
    return np.stack(out)


def _composite(background: np.ndarray, sprite: tuple[np.ndarray, np.ndarray],
               pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mover painted over the background at `pose`: the image and its id map (alpha > 1/2 is the mover)."""
    rgba, to_object = sprite
    x, y, angle, scale = pose
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    to_image = np.array([[c, -s, x], [s, c, y], [0.0, 0.0, 1.0]]) @ to_object
    h, w = background.shape[:2]
    warped = cv2.warpAffine(rgba, to_image[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = warped[..., 3:].astype(np.float32) / 255.0
    image = (background * (1.0 - alpha) + warped[..., :3] * alpha + 0.5).astype(np.uint8)
    return image, (alpha[..., 0] > 0.5).astype(np.int32)
