"""The camera-compensated motion as a second motion input of the memory: the flow minus a RANSAC
homography's (the geometric pipeline's ego-motion), in robust sigmas, squashed to [0, 1) at stride 4.

MP-Net reads the raw flow, so a slow mover under a moving camera looks to it like the background; the
residual is what the geometric pipeline finds movers by, and costs one homography fit a frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from movseg_ros.ego_motion import camera_residual, robust_spread

HALF_AT = 3.5  # residual (robust sigmas) mapped to 0.5; the geometric pipeline's residual_k is about this


def stride4(shape: tuple[int, int]) -> tuple[int, int]:
    """The size of a stride-4 map of an (H, W) image, as MP-Net's: (ceil(H/4), ceil(W/4))."""
    return (shape[0] + 3) // 4, (shape[1] + 3) // 4


def heading_residual(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(residual, its magnitude) of motion at a frame's pixels (H, W, 2; where they head, as MP-Net reads it):
    the homography is fitted to the flow back to the previous frame (the direction fitted elsewhere), and the
    residual is returned heading again, so MP-Net and `residual_map` can share one fit."""
    back = -np.asarray(motion, np.float32)
    residual, mag = camera_residual(back)
    return -residual, mag


def residual_map(motion: np.ndarray, magnitude: np.ndarray | None = None) -> np.ndarray:
    """Motion at a frame's pixels (H, W, 2; where they head, as MP-Net reads it) -> z / (z + HALF_AT) at
    stride 4, z the residual after the camera's homography over its robust spread. No motion gives zeros.
    `magnitude`: the residual's magnitude when the caller has it (`heading_residual`), else fitted here."""
    mag = heading_residual(motion)[1] if magnitude is None else magnitude
    z = mag / robust_spread(mag)
    squashed = (z / (z + HALF_AT)).astype(np.float32)
    h4, w4 = stride4(mag.shape)
    return cv2.resize(squashed, (w4, h4), interpolation=cv2.INTER_AREA)
