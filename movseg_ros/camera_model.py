"""The pinhole camera: intrinsics from a CameraInfo's K (or the synthetic scene), scaled with the image.

Coordinates follow REP-103's optical frame: x right, y down, z forward (metres); pixel (u, v) has
its origin at the top-left pixel's centre, as in CameraInfo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Focal lengths and principal point in pixels, for images of `width` x `height`."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (self.fx > 0 and self.fy > 0 and np.isfinite([self.fx, self.fy, self.cx, self.cy]).all()):
            raise ValueError(f"intrinsics need positive finite focal lengths, got fx={self.fx} fy={self.fy} "
                             f"cx={self.cx} cy={self.cy}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"intrinsics need a positive image size, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k: np.ndarray | list[float], width: int, height: int) -> "Intrinsics":
        """From a row-major 3x3 K (CameraInfo.k)."""
        m = np.asarray(k, np.float64).reshape(3, 3)
        return cls(float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]), int(width), int(height))

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera for the image resized to `width` x `height` (pixel centres kept aligned)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                          int(width), int(height))
