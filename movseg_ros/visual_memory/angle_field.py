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
    f = np.asarray(flow)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got shape {f.shape}")
    f = np.nan_to_num(f.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    m = np.hypot(f[..., 0], f[..., 1])
    scale = max(float(np.percentile(m, PERCENTILE)) if m.size else 0.0, float(min_range))
    out = np.empty(m.shape + (3,), np.float32)
    moving = m >= min_magnitude
    safe = np.where(moving, m, 1.0)
    out[..., 0] = np.where(moving, f[..., 0] / safe, 0.0)
    out[..., 1] = np.where(moving, f[..., 1] / safe, 0.0)
    out[..., 2] = np.clip(m / scale, 0.0, 1.0)
    return out


def field_tensor(flow: np.ndarray, min_magnitude: float = MIN_MAGNITUDE, min_range: float = MIN_RANGE) -> torch.Tensor:
    """angle_field as the network takes it: (3, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(angle_field(flow, min_magnitude, min_range).transpose(2, 0, 1)))
