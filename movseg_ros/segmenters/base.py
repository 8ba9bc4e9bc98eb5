"""What every segmenter returns, and the interface the pipeline drives."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import cv2
import numpy as np

from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.frame import Frame, width_size


@dataclass
class Detection:
    """One object in one frame: a full-resolution boolean mask, a confidence and a motion flag."""

    mask: np.ndarray
    score: float
    moving: bool = True
    identity: int | None = None  # the object's id when the segmenter tracks itself (stem_seg's stitched tubes)


@dataclass
class MotionContext:
    """What the tracker needs to carry a stopped object's mask into this frame.

    `homography` maps pixel coordinates of the previous frame to this frame (the camera's
    ego-motion); images are the full-resolution RGB frames.
    """

    previous: np.ndarray
    current: np.ndarray
    homography: np.ndarray

    @cached_property
    def current_grey(self) -> np.ndarray:
        return cv2.cvtColor(self.current, cv2.COLOR_RGB2GRAY)

    @cached_property
    def previous_grey_moved(self) -> np.ndarray:
        """The previous frame in grey, moved by the ego-motion onto the current one (computed once
        per frame, however many tracks are carried)."""
        h, w = self.current.shape[:2]
        grey = cv2.cvtColor(self.previous, cv2.COLOR_RGB2GRAY)
        return cv2.warpPerspective(grey, self.homography, (w, h), flags=cv2.INTER_LINEAR)


@dataclass
class SegmenterResult:
    """The segmenter's answer for one frame."""

    frame: Frame
    detections: list[Detection] = field(default_factory=list)
    motion: MotionContext | None = None


class Segmenter(Protocol):
    """Takes the clip buffer after each new frame; returns results for zero or more frames.

    An online segmenter returns the newest frame's result at once (latency_frames == 0); a
    near-online one returns earlier frames' results `latency_frames` late, and the rest of the
    stream's on `flush()` (end of stream, or before a reset). A segmenter whose detections carry
    `identity` (it links objects over time itself) sets `identities` and gets an IdentityTracker.
    """

    name: str
    latency_frames: int
    device: str
    identities: bool

    def process(self, buffer: ClipBuffer) -> list[SegmenterResult]: ...

    def flush(self) -> list[SegmenterResult]: ...

    def reset(self) -> None: ...


DEVICES = ("cpu", "cuda", "auto")
ACCELERATORS = ("auto", "tensorrt", "compile", "eager")
PRECISIONS = ("fp32", "fp16", "bf16")


def check_runtime_settings(prefix: str, device: str, accelerator: str, precision: str) -> None:
    """Where and how a segmenter's network runs; a ValueError names `prefix`.setting (accel's own names)."""
    for name, value, allowed in (("device", device, DEVICES), ("accelerator", accelerator, ACCELERATORS),
                                 ("precision", precision, PRECISIONS)):
        if value not in allowed:
            raise ValueError(f"{prefix}.{name} '{value}' is not one of {', '.join(allowed)}")


def resize_to_width(image: np.ndarray, width: int) -> np.ndarray:
    """The frame at a segmenter's work width (never enlarged; aspect kept, at least 8 px high)."""
    return cv2.resize(image, width_size(image.shape[:2], width), interpolation=cv2.INTER_AREA)
