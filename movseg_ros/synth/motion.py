"""World trajectories of objects: similarity poses per frame, with start / stop / reverse events.

A clip of T frames has T + 1 poses (0..T): step t takes pose t to pose t + 1, and the object is
*moving at frame t* exactly when step t changes its pose (it moves relative to the world, not to
the camera). The extra pose T makes that flag defined for the last frame too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from movseg_ros.synth.config import SynthConfig

SCALE_LIMITS = (0.5, 2.0)  # an object's scale bounces back inside these


@dataclass(frozen=True)
class Trajectory:
    """Poses (T+1, 4: x, y, angle rad, scale) in world coordinates, and what drives them."""

    poses: np.ndarray
    moving: np.ndarray  # (T,) bool: step t changes the pose
    progress: np.ndarray  # (T+1,) frames moved before t (drives limb swing)
    event: str  # "static" or one of config.EVENTS
    event_frame: int | None  # frame at which start / stop / reverse happens

    def to_world(self, t: int) -> np.ndarray:
        """3x3 map from object coordinates to world coordinates at frame t."""
        x, y, angle, scale = self.poses[t]
        c, s = scale * math.cos(angle), scale * math.sin(angle)
        return np.array([[c, -s, x], [s, c, y], [0.0, 0.0, 1.0]])


def static_trajectory(frames: int, pose: tuple[float, float, float, float]) -> Trajectory:
    """An object that never moves in the world: the same pose in every frame."""
    poses = np.tile(np.asarray(pose, np.float64), (frames + 1, 1))
    return Trajectory(poses, np.zeros(frames, bool), np.zeros(frames + 1), "static", None)


def event_frame(rng: np.random.Generator, config: SynthConfig) -> int:
    """The frame an event happens at: inside the configured window, in 1..T-1."""
    lo, hi = config.event_window
    frac = rng.uniform(lo, hi)
    return int(min(config.frames - 1, max(1, 1 + round(frac * (config.frames - 2)))))


def moving_trajectory(
    rng: np.random.Generator,
    config: SynthConfig,
    pose: tuple[float, float, float, float],
    event: str,
    box: tuple[float, float, float, float],
) -> Trajectory:
    """A moving object's path: constant velocity (translation, rotation, scale rate) that starts, stops
    or reverses once per `event`, and bounces off the edges of `box` (x0, y0, x1, y1, world)."""
    frames = config.frames
    speed = rng.uniform(*config.translation)
    heading = rng.uniform(0.0, 2.0 * math.pi)
    velocity = np.array([
        speed * math.cos(heading),
        speed * math.sin(heading),
        math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg)),
        rng.uniform(-config.scaling, config.scaling),  # log-scale per frame
    ])
    k = event_frame(rng, config) if event != "constant" else None
    active = np.ones(frames, bool)
    if event == "start":
        active[:k] = False
    elif event == "stop":
        active[k:] = False
    poses = np.empty((frames + 1, 4))
    poses[0] = pose
    for t in range(frames):
        if event == "reverse" and t == k:
            velocity = -velocity
        step = velocity if active[t] else np.zeros(4)
        x, y = poses[t, 0] + step[0], poses[t, 1] + step[1]
        if active[t] and not box[0] <= x <= box[2]:
            velocity[0] = -velocity[0]
            x = poses[t, 0] + velocity[0]
        if active[t] and not box[1] <= y <= box[3]:
            velocity[1] = -velocity[1]
            y = poses[t, 1] + velocity[1]
        log_scale = math.log(poses[t, 3]) + step[3]
        if active[t] and not math.log(SCALE_LIMITS[0]) <= log_scale <= math.log(SCALE_LIMITS[1]):
            velocity[3] = -velocity[3]
            log_scale = math.log(poses[t, 3]) + velocity[3]
        poses[t + 1] = (x, y, poses[t, 2] + step[2], math.exp(log_scale))
    progress = np.concatenate([[0.0], np.cumsum(active)]).astype(np.float64)
    return Trajectory(poses, active, progress, event, k)
