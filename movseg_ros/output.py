"""What the pipeline emits per frame: the tracks present and a label map of their ids."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from movseg_ros.frame import Frame

if TYPE_CHECKING:
    from movseg_ros.geometry3d import Object3D


class TrackStatus(IntEnum):
    """Where a track stands in this frame."""

    VISIBLE = 0  # matched to a detection or continued from static evidence in this frame
    LOST = 1  # not seen in this frame, kept for up to t_inactive frames


@dataclass
class TrackState:
    """One track in one frame, as published on /movseg/tracks."""

    id: int
    mask: np.ndarray | None  # full-resolution bool mask; None when LOST
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), pixels
    score: float
    moving: bool
    status: TrackStatus
    age: int  # frames since the track started (0 in its first frame)
    hits: int  # frames in which it was seen
    velocity: tuple[float, float]  # box-centre velocity in the image, pixels/s
    geometry: Object3D | None = None  # 3D centroid, extent and velocity, when the frame had depth

    @property
    def area(self) -> int:
        return 0 if self.mask is None else int(self.mask.sum())


@dataclass
class FrameOutput:
    """Tracks of one frame and its label map (uint16, 0 = background, value = track id)."""

    frame: Frame
    tracks: list[TrackState]
    label_map: np.ndarray

    @property
    def visible(self) -> list[TrackState]:
        return [t for t in self.tracks if t.status == TrackStatus.VISIBLE]

    def foreground(self) -> np.ndarray:
        """Union of the visible tracks' masks (the binary DAVIS answer)."""
        return self.label_map > 0


def label_map_of(tracks: list[TrackState], shape: tuple[int, int]) -> np.ndarray:
    """Paint visible tracks into a uint16 map, higher scores over lower ones."""
    out = np.zeros(shape, np.uint16)
    for t in sorted((t for t in tracks if t.mask is not None), key=lambda t: t.score):
        out[t.mask] = t.id
    return out
