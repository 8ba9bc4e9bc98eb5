"""Camera ego-motion: pan, tilt, roll and zoom as a homography, sideways translation as parallax.

World coordinates of a layer at depth d are frame-0 pixel coordinates of that layer. Frame t
sees the point p of that layer at  H_t (p - c_t / d)  (homogeneous), where H_t = K_t R_t K_0^-1
(rotation R_t = roll * tilt * pan, focal length scaled by the zoom) and c_t is the camera's
sideways translation in pixels at depth 1: near layers shift more than far ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from movseg_ros.synth.config import SynthConfig

PARAMETERS = ("pan", "tilt", "roll", "zoom", "tx", "ty")


@dataclass(frozen=True)
class CameraPath:
    """Per-frame camera (T+1 entries: frame T exists for the last frame's motion)."""

    homographies: np.ndarray  # (T+1, 3, 3) K_t R_t K_0^-1
    translations: np.ndarray  # (T+1, 2) sideways translation, px at depth 1
    params: np.ndarray  # (T+1, 6) pan, tilt, roll (rad), log zoom, tx, ty

    def matrix(self, t: int, depth: float) -> np.ndarray:
        """3x3 map from world coordinates of a layer at `depth` to frame t's pixels."""
        shift = np.array([[1.0, 0.0, -self.translations[t, 0] / depth],
                          [0.0, 1.0, -self.translations[t, 1] / depth], [0.0, 0.0, 1.0]])
        return self.homographies[t] @ shift

    def matrices(self, depth: float) -> np.ndarray:
        """(T+1, 3, 3): matrix(t, depth) for every t."""
        shift = np.tile(np.eye(3), (len(self.translations), 1, 1))
        shift[:, :2, 2] = -self.translations / depth
        return self.homographies @ shift

    @property
    def still(self) -> bool:
        """True when the camera never moves in the clip."""
        return bool(np.allclose(self.params, 0.0))


def camera_homography(width: int, height: int, focal: float, pan: float, tilt: float, roll: float,
                      log_zoom: float) -> np.ndarray:
    """K_t R K_0^-1 for a camera rotated by pan/tilt/roll (rad) with its focal length scaled by exp(log_zoom)."""
    f = focal * width
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    k0 = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    z = math.exp(log_zoom)
    kt = np.array([[f * z, 0.0, cx], [0.0, f * z, cy], [0.0, 0.0, 1.0]])
    cp, sp = math.cos(pan), math.sin(pan)
    ct, st = math.cos(tilt), math.sin(tilt)
    cr, sr = math.cos(roll), math.sin(roll)
    r_pan = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    r_tilt = np.array([[1.0, 0.0, 0.0], [0.0, ct, -st], [0.0, st, ct]])
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return kt @ (r_roll @ r_tilt @ r_pan) @ np.linalg.inv(k0)


def sample_camera(rng: np.random.Generator, config: SynthConfig) -> CameraPath:
    """A smooth random camera path: each parameter's velocity is a drift plus an oscillation."""
    n = config.frames + 1
    limits = np.array([math.radians(config.pan_deg), math.radians(config.tilt_deg), math.radians(config.roll_deg),
                       config.zoom, config.camera_translation, config.camera_translation])
    draws = rng.uniform(-0.5, 0.5, (2, 6)) * limits  # drift, oscillation amplitude: |velocity| <= limit
    periods = rng.uniform(*config.camera_period, 6)
    phases = rng.uniform(0.0, 2.0 * math.pi, 6)
    still = rng.random() < config.camera_still_probability
    t = np.arange(n - 1, dtype=np.float64)[:, None]
    velocity = draws[0] + draws[1] * np.cos(2.0 * math.pi * t / periods + phases)
    if still:
        velocity[:] = 0.0
    params = np.vstack([np.zeros((1, 6)), np.cumsum(velocity, axis=0)])
    homographies = np.stack([camera_homography(config.width, config.height, config.focal, *p[:4]) for p in params])
    return CameraPath(homographies, params[:, 4:6].copy(), params)
