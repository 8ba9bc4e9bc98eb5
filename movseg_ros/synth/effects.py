"""What a real sensor adds after the scene is painted: motion blur, brightness drift, noise."""

from __future__ import annotations

import math
from statistics import NormalDist

import cv2
import numpy as np

MAX_BLUR_SAMPLES = 5


def motion_blur(
    image: np.ndarray, flow: np.ndarray, exposure: float, grid: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Average the frame along each pixel's own motion over the exposure (a fraction of the frame interval).

    Samples at offsets s * flow, s evenly in [-exposure/2, exposure/2]; their count follows the blur
    length (95th percentile of |flow|, every 4th pixel, * exposure), 1 (no blur) to MAX_BLUR_SAMPLES.
    """
    sparse = flow[::4, ::4]
    length = exposure * float(np.percentile(cv2.magnitude(sparse[..., 0], sparse[..., 1]), 95))
    n = min(MAX_BLUR_SAMPLES, 1 + math.ceil(length))
    if n < 2 or exposure <= 0:
        return image
    xs, ys = grid
    acc = np.zeros(image.shape, np.float32)
    for s in np.linspace(-0.5 * exposure, 0.5 * exposure, n):
        mx = xs + np.float32(s) * flow[..., 0]
        my = ys + np.float32(s) * flow[..., 1]
        acc += cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cv2.convertScaleAbs(acc, alpha=1.0 / n)


def brightness_gains(rng: np.random.Generator, frames: int, drift: float) -> np.ndarray:
    """Per-frame gain: a random walk from 1 with steps in [-drift, drift], kept in [0.6, 1.4]."""
    steps = rng.uniform(-drift, drift, frames)
    steps[0] = 0.0
    return np.clip(np.cumprod(1.0 + steps), 0.6, 1.4)


def apply_gain(image: np.ndarray, gain: float) -> np.ndarray:
    """Multiply every channel by `gain` (saturating), through a 256-entry table."""
    if gain == 1.0:
        return image
    table = np.clip(np.arange(256, dtype=np.float64) * gain + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


class SensorNoise:
    """Gaussian noise of a given sigma drawn through a 256-entry quantile table (random bytes are cheap)."""

    def __init__(self, rng: np.random.Generator, sigma: float) -> None:
        self.rng = rng
        self.sigma = float(sigma)
        if sigma > 0:
            dist = NormalDist(0.0, sigma)
            self.table = np.array([dist.inv_cdf((k + 0.5) / 256.0) for k in range(256)], np.float32)
        else:
            self.table = None

    def add(self, image: np.ndarray) -> np.ndarray:
        if self.table is None:
            return image
        draws = np.frombuffer(self.rng.bytes(image.size), np.uint8).reshape(image.shape)
        return cv2.add(image, cv2.LUT(draws, self.table), dtype=cv2.CV_8U)
