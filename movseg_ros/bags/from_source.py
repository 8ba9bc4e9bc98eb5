"""Frames for `movseg bag make`: a video, an image folder or a DAVIS sequence, with its truth as label maps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from movseg_ros.bags.image_msgs import label_map_uint16
from movseg_ros.sources import Source, SourceError, open_source

TruthReader = Callable[[int], "np.ndarray | None"]


@dataclass(frozen=True)
class SourceFrames:
    """An opened input: how many frames will come, its native rate, and its truth reader if any."""

    source: Source
    total: int  # frames that will be yielded (may be approximate for a video)
    truth: TruthReader | None  # frame index -> uint16 label map (or None for an unannotated frame)
    truth_kind: str  # "instances" (DAVIS 2017 ids kept), "binary" (DAVIS 2016: foreground = 1) or "none"
    max_frames: int | None
    size: tuple[int, int] | None  # (width, height) to resize to, or None

    @property
    def has_truth(self) -> bool:
        return self.truth is not None

    def frames(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(HxWx3 uint8 RGB, HxW uint16 labels or None) per frame, resized if asked."""
        for frame in self.source.frames(self.max_frames):
            image, labels = frame.image, self.truth(frame.index) if self.truth else None
            if self.size is not None:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
                if labels is not None:
                    labels = cv2.resize(labels, self.size, interpolation=cv2.INTER_NEAREST)
            yield image, labels


def open_frames(path: str | Path, max_frames: int | None = None, resize: tuple[int, int] | None = None
                ) -> SourceFrames:
    """Open `path` through movseg_ros.sources; DAVIS sequences bring their Annotations/ as truth."""
    source = open_source(path)
    if max_frames is not None and max_frames < 1:
        raise SourceError(f"max_frames must be >= 1, got {max_frames}")
    if resize is not None and (resize[0] < 1 or resize[1] < 1):
        raise SourceError(f"resize must be at least 1x1, got {resize[0]}x{resize[1]}")
    total = len(source) if max_frames is None else min(len(source), max_frames)
    truth, kind = _truth_reader(source) if source.kind == "davis" else (None, "none")
    return SourceFrames(source, total, truth, kind, max_frames, resize)


def _truth_reader(source: Source) -> tuple[TruthReader | None, str]:
    """Frame index -> uint16 label map of a DAVIS sequence, and the kind of truth; (None, "none") without any.

    DAVIS 2017 palette PNGs give instance ids; DAVIS 2016 grey masks give label 1.
    """
    from movseg_ros.datasets import davis as dataset_davis

    sequence = dataset_davis.read_sequence(source.path)
    _check_length(source, len(sequence))
    if sequence.truth is None:
        return None, "none"
    annotated = set(sequence.annotated)
    kind = "binary" if sequence.dataset == "davis2016" else "instances"
    return (lambda i: label_map_uint16(sequence.labels(i)) if i in annotated else None), kind


def _check_length(source: Source, count: int) -> None:
    if count != len(source):
        raise SourceError(f"{source.path}: {len(source)} frames in JPEGImages/ but the DAVIS reader sees {count}")
