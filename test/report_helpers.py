"""Tiny data folders for the report tests: real files in the layouts the readers expect."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_davis_square(root: Path) -> Path:
    """`root` as a DAVIS-2016 folder with one sequence 'square': 3 JPEG frames of 96x64 with a textured
    square moving 6 px right a frame, and PNG annotations with the square at 255."""
    (root / "square" / "JPEGImages").mkdir(parents=True)
    (root / "square" / "Annotations").mkdir(parents=True)
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), (5, 5), 0)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8), (3, 3), 0)
    for i in range(3):
        image, mask = background.copy(), np.zeros((64, 96), np.uint8)
        x = 20 + 6 * i
        image[22:42, x:x + 20] = patch
        mask[22:42, x:x + 20] = 255
        cv2.imwrite(str(root / "square" / "JPEGImages" / f"{i:05d}.jpg"), image)
        cv2.imwrite(str(root / "square" / "Annotations" / f"{i:05d}.png"), mask)
    return root
