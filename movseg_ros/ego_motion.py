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
    def fit(cls, flow: np.ndarray, step: int = 8, threshold: float = 1.0) -> "EgoMotion":
        """RANSAC homography on a grid of flow vectors (every `step` pixels, `threshold` px)."""
        h, w = flow.shape[:2]
        ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
        src = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
        dst = src + flow[ys.ravel(), xs.ravel()]
        hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, threshold)
        if hom is None:  # degenerate flow (e.g. a blank image): fall back to "no camera motion"
            hom, ratio = np.eye(3), 0.0
        else:
            ratio = float(inliers.mean())
        return cls(hom, predicted_flow(hom, (h, w)), ratio)


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
