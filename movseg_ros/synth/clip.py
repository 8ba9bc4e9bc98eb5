"""One synthetic clip with its exact truth, and the generator that draws it from a config and a seed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from movseg_ros.synth.camera import CameraPath, sample_camera
from movseg_ros.synth.config import EVENTS, SynthConfig, SynthConfigError
from movseg_ros.synth.effects import SensorNoise, apply_gain, brightness_gains, motion_blur
from movseg_ros.synth.motion import Trajectory, moving_trajectory, static_trajectory
from movseg_ros.synth.objects import ObjectModel, blob_outline, make_object, photo_patch
from movseg_ros.synth.render import (
    Surface,
    exact_flow,
    flow_matrices,
    paint_order,
    pixel_grid,
    render_frame,
)
from movseg_ros.synth.textures import TextureBank, load_bank

LAYER_MARGIN = 0.25  # partial background layers extend this fraction of the frame beyond each edge


@dataclass(frozen=True)
class Clip:
    """T frames and their truth. Instance ids 1..N are stable through the clip; 0 is the background.

    moving[t, i] is True when instance i moves relative to the world between frame t and t+1 (for the
    last frame: between T-1 and the next, unrendered, pose). flow[t] is the exact forward flow from
    frame t to t+1 in pixels (x then y), so there are T-1 flows.
    """

    images: np.ndarray  # (T, H, W, 3) uint8 RGB
    flow: np.ndarray  # (T-1, H, W, 2) float32
    instances: np.ndarray  # (T, H, W) int32
    moving: np.ndarray  # (T, N+1) bool, column 0 (background) always False
    depth: np.ndarray  # (N+1,) float32: each instance's depth, [0] the far background's
    static_ids: tuple[int, ...]  # instances that never move in the world
    events: dict[int, str]  # id -> "static", "constant", "start", "stop" or "reverse"
    event_frames: dict[int, int | None]  # id -> frame of its start / stop / reverse
    kinds: dict[int, str]  # id -> where its look came from ("cutout:davis:dog/00010", "outline", ...)
    camera: CameraPath
    seed: int
    config: SynthConfig
    texture_source: str  # "davis" or "skimage"
    exposure: float  # motion-blur exposure (0: none)
    noise_sigma: float
    gains: np.ndarray  # (T,) brightness gain per frame

    @property
    def n_instances(self) -> int:
        return len(self.depth) - 1

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.n_instances + 1))

    def depth_order(self, t: int) -> list[int]:
        """Ids visible in frame t, nearest first."""
        visible = [i for i in np.unique(self.instances[t]).tolist() if i > 0]
        return sorted(visible, key=lambda i: (float(self.depth[i]), i))

    def moving_ids(self, t: int) -> list[int]:
        """Ids moving at frame t (visible or not)."""
        return [int(i) for i in np.flatnonzero(self.moving[t]) if i > 0]

    def camera_matrix(self, t: int, depth: float) -> np.ndarray:
        """3x3 map from world coordinates at `depth` to frame t's pixels."""
        return self.camera.matrix(t, depth)


def generate_clip(config: SynthConfig, seed: int, bank: TextureBank | None = None) -> Clip:
    """Draw and render one clip. The same config, seed and texture source give the same clip."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SynthConfigError(f"synth seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    if bank is None:
        bank = load_bank(config.texture_source, config.width, config.height, config.davis_root)
    rng = np.random.default_rng([seed, 1])
    w, h, frames = config.width, config.height, config.frames
    camera = sample_camera(rng, config)
    surfaces = _background_surfaces(rng, config, bank, camera)
    objects = _draw_objects(rng, config, bank)
    for oid, (model, traj, depth) in enumerate(objects, start=1):
        world = camera.matrices(depth)
        for part in model.parts:
            to_image = np.stack([world[t] @ traj.to_world(t) @ part.to_object(traj.progress[t])
                                 for t in range(frames + 1)])
            surfaces.append(Surface(part.rgba, to_image, oid, depth, part.rank))
    surfaces = paint_order(surfaces)
    instance_of = np.zeros(256, np.int32)
    instance_of[: len(surfaces)] = [s.instance for s in surfaces]

    blurred = rng.random() < config.blur_probability
    exposure = float(rng.uniform(*config.exposure)) if blurred else 0.0
    sigma = float(rng.uniform(*config.noise_sigma))
    gains = brightness_gains(rng, frames, config.brightness_drift)
    noise = SensorNoise(np.random.default_rng([seed, 2]), sigma)

    grid = pixel_grid(w, h)
    images = np.empty((frames, h, w, 3), np.uint8)
    instances = np.empty((frames, h, w), np.int32)
    flow = np.empty((frames - 1, h, w, 2), np.float32)
    for t in range(frames):
        painted = render_frame(surfaces, t, w, h)
        instances[t] = instance_of[painted.label]
        f = exact_flow(painted.label, flow_matrices(surfaces, t), grid) if t < frames - 1 or exposure > 0 else None
        if t < frames - 1:
            flow[t] = f
        image = motion_blur(painted.rgb, f, exposure, grid) if exposure > 0 else painted.rgb
        images[t] = noise.add(apply_gain(image, float(gains[t])))

    n = len(objects)
    moving = np.zeros((frames, n + 1), bool)
    for oid, (_, traj, _) in enumerate(objects, start=1):
        moving[:, oid] = traj.moving
    depth = np.array([config.far_depth] + [d for _, _, d in objects], np.float32)
    return Clip(
        images=images, flow=flow, instances=instances, moving=moving, depth=depth,
        static_ids=tuple(i for i, (_, t, _) in enumerate(objects, start=1) if t.event == "static"),
        events={i: t.event for i, (_, t, _) in enumerate(objects, start=1)},
        event_frames={i: t.event_frame for i, (_, t, _) in enumerate(objects, start=1)},
        kinds={i: m.kind for i, (m, _, _) in enumerate(objects, start=1)},
        camera=camera, seed=seed, config=config, texture_source=bank.source, exposure=exposure,
        noise_sigma=sigma, gains=gains,
    )


def _draw_objects(
    rng: np.random.Generator, config: SynthConfig, bank: TextureBank
) -> list[tuple[ObjectModel, Trajectory, float]]:
    """Moving and static objects in a random id order: look, world path, depth."""
    w, h = config.width, config.height
    n_moving = int(rng.integers(config.n_moving[0], config.n_moving[1] + 1))
    n_static = int(rng.integers(config.n_static[0], config.n_static[1] + 1))
    p_const = 1.0 - config.p_start - config.p_stop - config.p_reverse
    probs = np.array([p_const, config.p_start, config.p_stop, config.p_reverse])
    roles: list[str] = []
    for k in range(n_moving):
        roles.append(config.scripted_events[k] if k < len(config.scripted_events)
                     else EVENTS[int(rng.choice(len(EVENTS), p=probs / probs.sum()))])
    roles += ["static"] * n_static
    order = rng.permutation(len(roles))  # ids do not give away which objects move
    box = (0.05 * w, 0.05 * h, 0.95 * w, 0.95 * h)
    out = []
    for k in order:
        role = roles[k]
        area = rng.uniform(*config.object_area) * w * h
        model = make_object(rng, bank, config, area)
        upright = model.kind != "outline"
        angle = rng.uniform(-0.3, 0.3) if upright else rng.uniform(0.0, 2.0 * math.pi)
        pose = (rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h), angle, 1.0)
        depth = float(rng.uniform(*config.object_depth))
        traj = static_trajectory(config.frames, pose) if role == "static" else \
            moving_trajectory(rng, config, pose, role, box)
        out.append((model, traj, depth))
    return out


def _background_surfaces(
    rng: np.random.Generator, config: SynthConfig, bank: TextureBank, camera: CameraPath
) -> list[Surface]:
    """The far full layer (a photo, mirrored beyond its edges) and partial nearer layers."""
    w, h = config.width, config.height
    photo = bank.photos[int(rng.integers(len(bank.photos)))]
    if rng.random() < 0.5:
        photo = cv2.flip(photo, 1)
    ph, pw = photo.shape[:2]
    origin = np.array([[1.0, 0.0, -rng.uniform(0, pw - w)], [0.0, 1.0, -rng.uniform(0, ph - h)], [0.0, 0.0, 1.0]])
    far = Surface(photo, camera.matrices(config.far_depth) @ origin, 0, config.far_depth, 0, covers_all=True)
    layers = [far]
    for depth in sorted(rng.uniform(*config.layer_depth, config.depth_layers - 1), reverse=True):
        lw, lh = round(w * (1 + 2 * LAYER_MARGIN)), round(h * (1 + 2 * LAYER_MARGIN))
        alpha = _layer_shape(rng, lw, lh, w, h)
        rgba = photo_patch(rng, bank, lw, lh)
        rgba[..., 3] = alpha
        place = np.array([[1.0, 0.0, -LAYER_MARGIN * w], [0.0, 1.0, -LAYER_MARGIN * h], [0.0, 0.0, 1.0]])
        layers.append(Surface(rgba, camera.matrices(float(depth)) @ place, 0, float(depth), 0))
    return layers


def _layer_shape(rng: np.random.Generator, lw: int, lh: int, w: int, h: int) -> np.ndarray:
    """Coverage of a partial background layer: rolling ground, posts (like tree trunks) or large blobs."""
    alpha = np.zeros((lh, lw), np.uint8)
    kind = int(rng.integers(3))
    xs = np.linspace(0, lw, 64)
    if kind == 0:  # ground with a wavy horizon
        top = lh * rng.uniform(0.62, 0.8) + sum(
            rng.uniform(0.0, 0.04) * lh * np.sin(2 * math.pi * k * xs / lw + rng.uniform(0, 2 * math.pi))
            for k in (1, 2, 5))
        poly = np.concatenate([np.stack([xs, top], 1), [[lw, lh], [0, lh]]])
        polys = [poly]
    elif kind == 1:  # posts
        polys = []
        ys = np.linspace(0, lh, 32)
        for _ in range(int(rng.integers(1, 4))):
            cx, half = rng.uniform(0.1, 0.9) * lw, rng.uniform(0.02, 0.06) * w
            wobble = 0.3 * half * np.sin(2 * math.pi * ys / lh * rng.uniform(1, 3) + rng.uniform(0, 6.3))
            top = rng.uniform(0.0, 0.4) * lh
            left = np.stack([cx - half + wobble, np.maximum(ys, top)], 1)
            right = np.stack([cx + half + wobble, np.maximum(ys, top)], 1)[::-1]
            polys.append(np.concatenate([left, right]))
    else:  # blobs (bushes, rocks)
        polys = []
        for _ in range(int(rng.integers(2, 5))):
            outline = blob_outline(rng, rng.uniform(0.03, 0.08) * w * h, math.exp(rng.uniform(-0.5, 0.5)))
            polys.append(outline + np.array([rng.uniform(0.1, 0.9) * lw, rng.uniform(0.1, 0.9) * lh]))
    for poly in polys:
        cv2.fillPoly(alpha, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return alpha
