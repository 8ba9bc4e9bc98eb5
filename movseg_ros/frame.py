"""The unit of input: one RGB image with its stamp and frame id, and what else the robot knows then."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from movseg_ros.camera_model import Intrinsics


def width_size(size: tuple[int, int], width: int) -> tuple[int, int]:
    """(w, h) of an image of `size` (h, w) brought to `width`: aspect kept, never enlarged, at least 8 px high."""
    h0, w0 = size
    w = min(width, w0)
    return w, max(8, int(round(h0 * w / w0)))


@dataclass(frozen=True)
class Frame:
    """One camera image (HxWx3 uint8 RGB) with the header it arrived with.

    Optional, from the robot: `depth` (HxW float32 metres registered to the image, NaN where
    unknown), `intrinsics` (of this image's size) and `rotation` (3x3, the camera's rotation since
    the previous frame of the stream, in the optical frame: a point X in the previous camera frame is
    R @ X in this one), from an IMU or odometry. `gap_before`: frames the source knows went missing
    just before this one (the node's queue dropped them), so a clip never joins frames across them.
    """

    image: np.ndarray
    stamp_ns: int
    frame_id: str = ""
    index: int = 0
    depth: np.ndarray | None = None
    intrinsics: Intrinsics | None = None
    rotation: np.ndarray | None = None
    gap_before: int = 0
    _at_width: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        img = self.image
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"Frame.image must be HxWx3 uint8 RGB, got shape {img.shape} dtype {img.dtype}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"Frame.image is empty: shape {img.shape}")
        if self.depth is not None and (self.depth.shape != img.shape[:2] or self.depth.dtype != np.float32):
            raise ValueError(f"Frame.depth must be HxW float32 like the image {img.shape[:2]}, "
                             f"got shape {self.depth.shape} dtype {self.depth.dtype}")
        if self.intrinsics is not None and (self.intrinsics.width, self.intrinsics.height) != (img.shape[1], img.shape[0]):
            raise ValueError(f"Frame.intrinsics are for {self.intrinsics.width}x{self.intrinsics.height}, "
                             f"the image is {img.shape[1]}x{img.shape[0]}")
        if self.rotation is not None and np.asarray(self.rotation).shape != (3, 3):
            raise ValueError(f"Frame.rotation must be 3x3, got shape {np.asarray(self.rotation).shape}")
        if self.gap_before < 0:
            raise ValueError(f"Frame.gap_before must be >= 0 frames, got {self.gap_before}")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    def at_width(self, width: int) -> np.ndarray:
        """The image at `width` (aspect kept, never enlarged, at least 8 px high; INTER_AREA), made once per
        width: the segmenter's work image and the buffer's thumbnail of the same frame are one resize."""
        image = self._at_width.get(width)
        if image is None:
            w, h = width_size(self.size, width)
            image = self.image if (h, w) == self.size else cv2.resize(self.image, (w, h), interpolation=cv2.INTER_AREA)
            self._at_width[width] = image
        return image
