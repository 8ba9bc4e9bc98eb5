"""The camera's ego-motion between two frames, fitted robustly to a dense flow field (or refining a prior from the robot)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

PRIOR_GATE = 3.0  # px: flow vectors this close to a prior's prediction vote to refine it
PRIOR_MIN_VOTES = 0.05  # fraction of the grid that must agree with a prior before it is refined
PRIOR_MIN_POINTS = 8  # ... and at least this many grid points


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
    def still(cls, shape: tuple[int, int]) -> "EgoMotion":
        """No camera motion (a fixed camera): the identity, taken as given."""
        return cls(np.eye(3), np.zeros((*shape, 2), np.float32), 1.0)

    @classmethod
    def fit(cls, flow: np.ndarray, step: int = 8, threshold: float = 1.0,
            exclude: np.ndarray | None = None, prior: np.ndarray | None = None,
            gate: float = PRIOR_GATE) -> "EgoMotion":
        """RANSAC homography on a grid of flow vectors (every `step` pixels, `threshold` px).

        `exclude` (bool HxW) marks pixels known to move independently (last frame's objects):
        they do not vote for the camera's motion, unless they would leave too few votes.
        `prior` (3x3, the same direction as `homography`, e.g. from a gyro) is refined, not replaced:
        only flow vectors within `gate` px of it vote (see `refine_prior`).
        """
        if prior is not None:
            return refine_prior(flow, prior, step, threshold, exclude, gate)
        h, w = flow.shape[:2]
        xs, ys, src, dst = _votes(flow, step, exclude)
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


def refine_prior(flow: np.ndarray, prior: np.ndarray, step: int = 8, threshold: float = 1.0,
                 exclude: np.ndarray | None = None, gate: float = PRIOR_GATE) -> EgoMotion:
    """The prior homography corrected by the flow that agrees with it: a large object or a fast pan cannot outvote it.

    Grid vectors within `gate` px of the prior's prediction vote in a RANSAC fit; the prior stands
    when fewer than PRIOR_MIN_VOTES of the grid (or PRIOR_MIN_POINTS) agree, or when the fit strays
    from it by more than `gate` anywhere in the image.
    """
    h, w = flow.shape[:2]
    prior = np.asarray(prior, np.float64)
    _, _, src, dst = _votes(flow, step, exclude)
    agree = _fits(prior, src, dst, gate)
    hom = prior
    if agree.sum() >= max(PRIOR_MIN_POINTS, PRIOR_MIN_VOTES * len(agree)):
        fitted, _ = cv2.findHomography(src[agree], dst[agree], cv2.RANSAC, threshold)
        if fitted is not None and _strays(fitted, prior, (h, w)) <= gate:
            hom = fitted
    return EgoMotion(hom, predicted_flow(hom, (h, w)), float(_fits(hom, src, dst, threshold).mean()))


def _votes(flow: np.ndarray, step: int, exclude: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The grid (every `step` px) that votes: x, y, source and flow-displaced points, the excluded left out
    unless fewer than 30 % would remain."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    ys, xs = ys.ravel(), xs.ravel()
    if exclude is not None:
        keep = ~exclude[ys, xs]
        if keep.mean() >= 0.3:
            ys, xs = ys[keep], xs[keep]
    src = np.stack([xs, ys], 1).astype(np.float32)
    return xs, ys, src, src + flow[ys, xs]


def _strays(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> float:
    """How far apart (px) two homographies put the image's corners and centre: the worst of the five."""
    h, w = shape
    points = np.array([[[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [(w - 1) / 2, (h - 1) / 2]]], np.float32)
    return float(np.linalg.norm(cv2.perspectiveTransform(points, a) - cv2.perspectiveTransform(points, b), axis=-1).max())


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


@functools.lru_cache(maxsize=4)
def pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of every pixel of an image of `shape` (float32, read-only), made once per size."""
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    gx.flags.writeable = False
    gy.flags.writeable = False
    return gx, gy


def predicted_flow(homography: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Displacement that `homography` gives every pixel of an image of `shape` (HxWx2 float32)."""
    h, w = shape
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    hm = homography.astype(np.float32)
    # each row of the homography is a term in x plus a term in y: one image-sized sum each, from a row and a column
    den = hm[2, 0] * x + (hm[2, 1] * y + hm[2, 2])
    px = hm[0, 0] * x + (hm[0, 1] * y + hm[0, 2])
    px /= den
    px -= x
    py = hm[1, 0] * x + (hm[1, 1] * y + hm[1, 2])
    py /= den
    py -= y
    return cv2.merge([px, py])


def rescale_homography(homography: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """The same motion expressed for images of another size ((h, w) to (h, w))."""
    s = np.diag([from_size[1] / to_size[1], from_size[0] / to_size[0], 1.0])
    return np.linalg.inv(s) @ homography @ s


def robust_spread(magnitude: np.ndarray) -> float:
    """The spread residual motion is measured in: 1.4826 x the median magnitude (a robust sigma) plus 0.1 px, so
    a still scene is not divided by zero."""
    return 1.4826 * float(np.median(magnitude)) + 0.1


def camera_residual(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(residual HxWx2, its magnitude HxW): the part of `flow` the camera's fitted homography does not explain."""
    residual = flow - EgoMotion.fit(flow).flow
    magnitude = cv2.magnitude(np.ascontiguousarray(residual[..., 0]), np.ascontiguousarray(residual[..., 1]))
    return residual, magnitude
