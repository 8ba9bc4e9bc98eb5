"""End-point error of flow estimators on held-out synthetic pairs (the same frames for every method)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.config import SynthConfig

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FlowPair:
    """Frames t, t+1 (HxWx3 uint8 RGB) and the exact forward flow t -> t+1 (HxWx2 float32)."""

    seed: int
    image1: np.ndarray
    image2: np.ndarray
    flow: np.ndarray


def synth_pairs(config: SynthConfig, seeds: Iterable[int]) -> list[FlowPair]:
    """The first pair of each seed's clip."""
    cfg = config.replace(frames=2)
    out = []
    for s in seeds:
        clip = generate_clip(cfg, int(s))
        out.append(FlowPair(int(s), clip.images[0], clip.images[1], clip.flow[0].astype(np.float32)))
    return out


@dataclass
class MethodScore:
    """A method's errors over all pairs: mean EPE, fraction of pixels off by > 1 and > 3 px, ms per pair."""

    name: str
    epe: float = 0.0
    over_1px: float = 0.0
    over_3px: float = 0.0
    ms_per_pair: float = 0.0
    epe_boundary: float = 0.0  # mean EPE within BOUNDARY_RADIUS px of a motion boundary of the true flow
    per_pair_epe: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "epe": self.epe, "over_1px": self.over_1px, "over_3px": self.over_3px,
                "epe_boundary": self.epe_boundary, "ms_per_pair": self.ms_per_pair, "per_pair_epe": self.per_pair_epe}


def score_methods(methods: dict[str, FlowFn], pairs: Sequence[FlowPair], progress: bool = True,
                  warmup: bool = True) -> list[MethodScore]:
    """Run every method on every pair; errors pooled over all pixels of all pairs.

    With `warmup` each method first runs once on the first pair, untimed (lazy initialisation).
    """
    boundaries = np.concatenate([motion_boundaries(p.flow).ravel() for p in pairs]) if pairs else np.zeros(0, bool)
    scores = []
    for name, fn in methods.items():
        if warmup and pairs:
            fn(pairs[0].image1, pairs[0].image2)
        errs, seconds = [], 0.0
        for p in tqdm(pairs, desc=f"flow {name}", unit="pair", disable=not progress, leave=False):
            t0 = time.perf_counter()
            pred = fn(p.image1, p.image2)
            seconds += time.perf_counter() - t0
            if pred.shape != p.flow.shape:
                raise ValueError(f"flow method '{name}' returned shape {pred.shape}, expected {p.flow.shape}")
            errs.append(np.linalg.norm(pred.astype(np.float64) - p.flow, axis=2))
        allerr = np.concatenate([e.ravel() for e in errs]) if errs else np.zeros(0)
        n = max(len(pairs), 1)
        scores.append(MethodScore(
            name=name, epe=float(allerr.mean()) if allerr.size else float("nan"),
            over_1px=float((allerr > 1.0).mean()) if allerr.size else float("nan"),
            over_3px=float((allerr > 3.0).mean()) if allerr.size else float("nan"),
            epe_boundary=float(allerr[boundaries].mean()) if boundaries.any() else float("nan"),
            ms_per_pair=1000.0 * seconds / n, per_pair_epe=[float(e.mean()) for e in errs]))
    return scores


BOUNDARY_STEP = 1.0  # px: neighbouring true flows differing by more than this make a motion boundary
BOUNDARY_RADIUS = 2  # px around it that count as "at the boundary"


def motion_boundaries(flow: np.ndarray, step: float = BOUNDARY_STEP, radius: int = BOUNDARY_RADIUS) -> np.ndarray:
    """HxW bool: pixels near a discontinuity of the (true) flow, where object meets background."""
    kernel = np.ones((3, 3), np.uint8)
    spread = np.zeros(flow.shape[:2], np.float32)
    for c in range(2):
        ch = np.ascontiguousarray(flow[..., c], dtype=np.float32)
        spread = np.maximum(spread, cv2.dilate(ch, kernel) - cv2.erode(ch, kernel))
    edge = (spread > step).astype(np.uint8)
    if radius > 0:
        edge = cv2.dilate(edge, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    return edge.astype(bool)


def zero_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The floor every method must beat: nothing moves."""
    return np.zeros(a.shape[:2] + (2,), np.float32)


def flow_colour(flow: np.ndarray, max_magnitude: float) -> np.ndarray:
    """Display colours (RGB uint8): hue is direction, saturation is speed up to `max_magnitude`."""
    mag, ang = cv2.cartToPolar(flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32))
    hsv = np.zeros(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = (ang * (90.0 / np.pi)).astype(np.uint8)
    hsv[..., 1] = np.clip(mag * (255.0 / max(max_magnitude, 1e-6)), 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
