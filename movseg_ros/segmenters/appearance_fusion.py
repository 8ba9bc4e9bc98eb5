"""Motion picks, appearance delineates: salient segments that motion touches give a mover its extent.

A salient segment counts as moving only when enough of it carries motion evidence; motion that no salient
segment covers is kept as it is (a mover nobody finds salient is still reported). Untouched salient
segments come back as static candidates, which may only continue a stopped track.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FusionSettings:
    """How saliency and motion combine (GeometricConfig's saliency_* settings)."""

    threshold: float = 0.5  # saliency above this is a salient pixel
    touch: float = 0.05  # a segment moves when this fraction of it has motion evidence
    trim: float = 0.6  # motion of a component this much inside moving segments is cut to them (> 1: never)
    min_area_px: float = 0.0  # segments smaller than this (pixels) are ignored
    reach: int = 0  # a moving segment gives extent only this close (pixels) to motion; 0 = the whole segment


@dataclass
class Fused:
    """The fused motion probability, and the salient segments with no motion (bool masks)."""

    prob: np.ndarray
    static_segments: list[np.ndarray]
    static_scores: list[float]


def fuse_saliency(prob: np.ndarray, saliency: np.ndarray, s: FusionSettings) -> Fused:
    """Motion probability `prob` and `saliency` (both HxW in [0, 1], one size) -> Fused."""
    motion = prob > 0.5
    salient = (saliency > s.threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(salient, connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    touched = np.bincount(labels[motion], minlength=n).astype(np.float64)
    frac = np.divide(touched, area, out=np.zeros(n), where=area > 0)
    big = area >= max(1.0, s.min_area_px)
    big[0] = False
    moving_ids = np.flatnonzero(big & (frac >= s.touch))
    static_ids = np.flatnonzero(big & (frac < s.touch))
    extent = np.isin(labels, moving_ids) if len(moving_ids) else np.zeros(prob.shape, bool)
    if s.reach > 0 and extent.any():  # a static neighbour merged into the segment stays out
        size = 2 * s.reach + 1
        extent &= cv2.dilate(motion.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    fused = prob.copy()
    fused[extent] = np.maximum(prob[extent], 0.5 + 0.5 * saliency[extent])
    if s.trim <= 1.0 and extent.any():
        m, comp = cv2.connectedComponents(motion.astype(np.uint8), connectivity=8)
        inside = np.bincount(comp[motion & extent], minlength=m) / np.maximum(np.bincount(comp[motion], minlength=m), 1)
        cut = np.flatnonzero(inside >= s.trim)
        cut = cut[cut > 0]
        if len(cut):
            drop = np.isin(comp, cut) & ~extent
            fused[drop] = np.minimum(fused[drop], 0.5 * saliency[drop])
    statics = [labels == i for i in static_ids]
    scores = [float(np.percentile(saliency[m], 90)) for m in statics]
    return Fused(fused, statics, scores)
