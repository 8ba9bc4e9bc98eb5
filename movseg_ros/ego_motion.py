"""The camera's ego-motion between two frames, fitted robustly to a dense flow field."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class EgoMotion:
    """A homography that explains the flow of the static scene, and the flow it predicts.

    `homography` maps pixel coordinates of the flow's source image to its target image;
    `flow` is the displacement it predicts at every pixel (HxWx2). Everything the camera's
    motion explains has flow == ego flow; the rest (independent motion, parallax) does not.
    """

    homography: np.ndarray
    flow: np.ndarray
    inlier_ratio: float

    @classmethod
    def fit(cls, flow: np.ndarray, step: int = 8, threshold: float = 1.0,
            exclude: np.ndarray | None = None) -> "EgoMotion":
        """RANSAC homography on a grid of flow vectors (every `step` pixels, `threshold` px).

        `exclude` (bool HxW) marks pixels known to move independently (last frame's objects):
        they do not vote for the camera's motion, unless they would leave too few votes.
        """
        h, w = flow.shape[:2]
        ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
        ys, xs = ys.ravel(), xs.ravel()
        if exclude is not None:
            keep = ~exclude[ys, xs]
            if keep.mean() >= 0.3:
                ys, xs = ys[keep], xs[keep]
        src = np.stack([xs, ys], 1).astype(np.float32)
        dst = src + flow[ys, xs]
        hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, threshold)
        if hom is None:  # degenerate flow (e.g. a blank image): fall back to "no camera motion"
            return cls(np.eye(3), predicted_flow(np.eye(3), (h, w)), 0.0)
        inliers = inliers.ravel() > 0
        rest = ~inliers
        if rest.mean() >= 0.2:  # a second coherent motion: the camera's, if the border moves with it
            hom2, inl2 = cv2.findHomography(src[rest], dst[rest], cv2.RANSAC, threshold)
            if hom2 is not None:
                border = _near_border(xs, ys, w, h)
                if _support(hom2, src, dst, border, threshold) > 1.5 * _support(hom, src, dst, border, threshold):
                    hom, inliers = hom2, _fits(hom2, src, dst, threshold)
        return cls(hom, predicted_flow(hom, (h, w)), float(inliers.mean()))


def _near_border(xs: np.ndarray, ys: np.ndarray, w: int, h: int, band: float = 0.12) -> np.ndarray:
    """Grid points within `band` of the image edge: where the static scene usually shows."""
    bx, by = band * w, band * h
    return (xs < bx) | (xs >= w - bx) | (ys < by) | (ys >= h - by)


def _fits(hom: np.ndarray, src: np.ndarray, dst: np.ndarray, threshold: float) -> np.ndarray:
    """Which correspondences `hom` explains within `threshold` px."""
    p = cv2.perspectiveTransform(src[None], hom)[0]
    return np.linalg.norm(p - dst, axis=1) <= threshold


def _support(hom: np.ndarray, src: np.ndarray, dst: np.ndarray, where: np.ndarray, threshold: float) -> float:
    """Fraction of the `where` correspondences that `hom` explains."""
    return float(_fits(hom, src[where], dst[where], threshold).mean()) if where.any() else 0.0


def predicted_flow(homography: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Displacement that `homography` gives every pixel of an image of `shape` (HxWx2 float32)."""
    h, w = shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    hm = homography.astype(np.float32)
    den = hm[2, 0] * gx + hm[2, 1] * gy + hm[2, 2]
    px = (hm[0, 0] * gx + hm[0, 1] * gy + hm[0, 2]) / den
    py = (hm[1, 0] * gx + hm[1, 1] * gy + hm[1, 2]) / den
    return np.dstack([px - gx, py - gy])


def rescale_homography(homography: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """The same motion expressed for images of another size ((h, w) to (h, w))."""
    s = np.diag([from_size[1] / to_size[1], from_size[0] / to_size[0], 1.0])
    return np.linalg.inv(s) @ homography @ s
