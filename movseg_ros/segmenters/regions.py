"""Regions of a probability map as detections: split where their motions differ, upsampled to the frame.

Shared by the pipelines that threshold a per-pixel map (geometric, visual_memory).
"""

from __future__ import annotations

import cv2
import numpy as np


def split_by_motion(region: np.ndarray, resid: np.ndarray, min_px: float, min_area: float) -> list[np.ndarray]:
    """Two parts if the residual motions form two clusters far apart (>= min_px and half the larger), else one."""
    if min_px <= 0 or region.sum() < 2 * min_area:
        return [region]
    vecs = resid[region].astype(np.float32)
    sample = vecs[:: max(1, len(vecs) // 2000)]
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 0.1)
    _, labels, centres = cv2.kmeans(sample, 2, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    gap = float(np.linalg.norm(centres[0] - centres[1]))
    if gap < max(min_px, 0.5 * float(np.linalg.norm(centres, axis=1).max())) or min(np.bincount(labels.ravel(), minlength=2)) < 0.25 * len(sample):
        return [region]
    d0 = np.linalg.norm(resid - centres[0], axis=-1)
    d1 = np.linalg.norm(resid - centres[1], axis=-1)
    side = cv2.medianBlur((d1 < d0).astype(np.uint8), 5) > 0
    parts = []
    for half in (region & ~side, region & side):
        n, lab, stats, _ = cv2.connectedComponentsWithStats(half.astype(np.uint8), connectivity=8)
        parts += [lab == j for j in range(1, n) if stats[j, cv2.CC_STAT_AREA] >= min_area]
    return parts or [region]


def upsample_region(part: np.ndarray, origin: tuple[int, int], work: tuple[int, int], full: tuple[int, int]) -> np.ndarray:
    """A work-resolution region crop as a full-resolution mask, edges interpolated, not blocky."""
    sx, sy = full[1] / work[1], full[0] / work[0]
    x0, y0 = origin
    ph, pw = part.shape
    fx0, fy0 = int(round(x0 * sx)), int(round(y0 * sy))
    fx1, fy1 = min(full[1], int(round((x0 + pw) * sx))), min(full[0], int(round((y0 + ph) * sy)))
    out = np.zeros(full, bool)
    if fx1 > fx0 and fy1 > fy0:
        padded = np.pad(part.astype(np.float32), 1)
        big = cv2.resize(padded, (fx1 - fx0 + int(round(2 * sx)), fy1 - fy0 + int(round(2 * sy))), interpolation=cv2.INTER_LINEAR)
        ox, oy = int(round(sx)), int(round(sy))
        out[fy0:fy1, fx0:fx1] = big[oy:oy + fy1 - fy0, ox:ox + fx1 - fx0] > 0.5
    return out
