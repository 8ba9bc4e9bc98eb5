"""MP-Net's input: the optical flow as an angle field (cos, sin of its direction) and a rescaled magnitude.

Direction, not raw displacement, is what tells an object's motion from the camera's (MP-Net, seed 003);
the angle is noise where a pixel barely moves, so it is zeroed there, and the magnitude is divided by a
robust per-frame maximum so slow and fast clips look alike to the network.
"""

from __future__ import annotations

import numpy as np
import torch

MIN_MAGNITUDE = 0.1  # px: below this the direction is noise and the angle channels are 0
MIN_RANGE = 1.0  # px: a frame whose 99th-percentile motion is smaller is not stretched to full range
PERCENTILE = 99.0


def angle_field(flow: np.ndarray, min_magnitude: float = MIN_MAGNITUDE, min_range: float = MIN_RANGE) -> np.ndarray:
    """Flow (H, W, 2) in pixels, x then y -> (H, W, 3) float32: cos θ, sin θ (0 where |f| < min_magnitude)
    and |f| / max(99th percentile of |f|, min_range) clipped to [0, 1]. Non-finite flow counts as none."""
    return np.ascontiguousarray(field_planes(flow, min_magnitude, min_range).transpose(1, 2, 0))


def field_planes(flow: np.ndarray, min_magnitude: float = MIN_MAGNITUDE, min_range: float = MIN_RANGE) -> np.ndarray:
    """angle_field channel-first: (3, H, W) float32, as the network takes it."""
    f = np.asarray(flow)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got shape {f.shape}")
    f = f.astype(np.float32, copy=False)
    if not np.isfinite(f).all():
        f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    m = np.hypot(f[..., 0], f[..., 1])
    scale = max(_percentile(m, PERCENTILE), float(min_range))
    inv = np.divide(1.0, m, out=np.zeros_like(m), where=m >= min_magnitude)
    out = np.empty((3,) + m.shape, np.float32)
    np.multiply(f[..., 0], inv, out=out[0])
    np.multiply(f[..., 1], inv, out=out[1])
    np.clip(np.multiply(m, 1.0 / scale, out=out[2]), 0.0, 1.0, out=out[2])
    return out


def field_tensor(flow: np.ndarray, min_magnitude: float = MIN_MAGNITUDE, min_range: float = MIN_RANGE) -> torch.Tensor:
    """angle_field as the network takes it: (3, H, W) float32."""
    return torch.from_numpy(field_planes(flow, min_magnitude, min_range))


def _percentile(values: np.ndarray, q: float) -> float:
    """np.percentile's linear interpolation by partial sort (a tenth of its time on a frame); 0 when empty."""
    a = values.ravel()
    if a.size == 0:
        return 0.0
    pos = q / 100.0 * (a.size - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    part = np.partition(a, (lo, hi))
    return float(part[lo] + (part[hi] - part[lo]) * (pos - lo))
