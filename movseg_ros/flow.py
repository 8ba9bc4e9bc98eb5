"""Dense optical flow behind one interface, and the flow-image encoding the learned models take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "balanced": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,  # medium with the overrides below
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# Our preset on top of OpenCV's. "balanced" is medium with patches every 4 px (not 3) and 2 variational
# refinement passes (not 5) on images of at least SPARSE_MIN_PIXELS: there it has medium's DAVIS-2016 train J
# in the geometric pipeline at about half medium's time. On smaller images (where medium is cheap anyway)
# the sparser patches lose small objects, so it is medium there (README, "How the geometric pipeline works").
SPARSE_MIN_PIXELS = 90_000  # the default work images: 400x300 (4:3) has 120,000 pixels, 400x225 (16:9) exactly 90,000
DIS_MIN_SIDE = 32  # OpenCV's DIS crashes the process (segfault) on some images with a side under this: 31x640, 15x400
DIS_OVERRIDES: dict[str, dict[str, int]] = {
    "balanced": {"PatchStride": 4, "VariationalRefinementIterations": 2},
}


def make_dis(preset: str, pixels: int) -> cv2.DISOpticalFlow:
    """An OpenCV DIS flow object for one of DIS_PRESETS and images of `pixels`, our overrides applied."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    if pixels >= SPARSE_MIN_PIXELS:
        for name, value in DIS_OVERRIDES.get(preset, {}).items():
            getattr(dis, f"set{name}")(value)
    return dis


class FlowEstimator(Protocol):
    """Forward flow from image `a` to image `b` (HxWx2 float32, pixels, at a's resolution)."""

    name: str

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DISFlowConfig:
    """OpenCV DIS flow settings. `scale` < 1 computes flow on a downscaled grey image."""

    preset: str = "fast"
    scale: float = 0.5
    variational_refinement_iters: int = -1  # -1: the preset's default

    def __post_init__(self) -> None:
        if self.preset not in DIS_PRESETS:
            raise ValueError(f"flow preset '{self.preset}' is not one of {sorted(DIS_PRESETS)}")
        if not 0.1 <= self.scale <= 1.0:
            raise ValueError(f"flow scale must be in [0.1, 1.0], got {self.scale}")


class DISFlow:
    """OpenCV's Dense Inverse Search flow: the CPU default (a few ms a frame at VGA)."""

    name = "dis"

    def __init__(self, config: DISFlowConfig = DISFlowConfig()) -> None:
        self.config = config
        self._dis: dict[bool, cv2.DISOpticalFlow] = {}  # by "at least SPARSE_MIN_PIXELS", made on first use

    def grey(self, rgb: np.ndarray) -> np.ndarray:
        """The image the flow is computed on: grey, at `scale`."""
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        s = self.config.scale
        if s != 1.0:
            g = cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        return g

    def flow_grey(self, ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
        """Flow between two images already made by `grey`, at that (downscaled) resolution. Images with a side
        under DIS_MIN_SIDE are padded (edge pixels repeated) for DIS, and the flow cropped back."""
        h, w = ga.shape[:2]
        if min(h, w) >= DIS_MIN_SIDE:
            return self._for_pixels(h * w).calc(ga, gb, None)
        pad = (0, max(0, DIS_MIN_SIDE - h), 0, max(0, DIS_MIN_SIDE - w))
        big_a, big_b = (cv2.copyMakeBorder(g, *pad, cv2.BORDER_REPLICATE) for g in (ga, gb))
        return np.ascontiguousarray(self._for_pixels(h * w).calc(big_a, big_b, None)[:h, :w])

    def _for_pixels(self, pixels: int) -> cv2.DISOpticalFlow:
        """The DIS object for images of `pixels` (the preset's settings can depend on the size)."""
        large = pixels >= SPARSE_MIN_PIXELS
        dis = self._dis.get(large)
        if dis is None:
            dis = self._dis[large] = make_dis(self.config.preset, pixels)
            if self.config.variational_refinement_iters >= 0:
                dis.setVariationalRefinementIterations(self.config.variational_refinement_iters)
        return dis

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        f = self.flow_grey(self.grey(a), self.grey(b))
        s = self.config.scale
        if s == 1.0:
            return f
        h, w = a.shape[:2]
        return cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) / s


def flow_to_image(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Seed 000's flow encoding: channel 0 angle, channel 1 magnitude, channel 2 empty (uint8).

    Angle in [0, 2pi) maps to [0, 255]; magnitude is divided by `max_magnitude` (default: the
    frame's largest) and clipped, so the image says where and which way things move.
    """
    fx, fy = flow[..., 0], flow[..., 1]
    mag, ang = cv2.cartToPolar(fx.astype(np.float32), fy.astype(np.float32))
    top = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    out = np.zeros(flow.shape[:2] + (3,), np.uint8)
    out[..., 0] = np.clip(ang * (255.0 / (2 * np.pi)), 0, 255).astype(np.uint8)
    if top > 0:
        out[..., 1] = np.clip(mag * (255.0 / top), 0, 255).astype(np.uint8)
    return out
