"""VideoSequence: what every dataset reader returns — frames read on demand, and ground truth where it exists.

Readers are lazy: a sequence holds file paths (or a video's path) and decodes a frame or an
annotation only when asked, so opening a whole data set costs a directory listing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from movseg_ros.datasets.errors import BadImageFile, DatasetError
from movseg_ros.datasets.label_files import image_size
from movseg_ros.frame import Frame
from movseg_ros.image_format import ImageFileError, read_image_file

DATASET_KINDS = ("davis2016", "davis2017", "fbms", "kitti_mots", "motschallenge", "ytvos", "images", "video")


class FrameStore(Protocol):
    """Where a sequence's images come from."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as HxWx3 uint8 RGB."""
        ...

    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        ...


class TruthStore(Protocol):
    """A sequence's ground truth: which frames are annotated, their instance ids and ignore regions."""

    annotated: tuple[int, ...]

    def labels(self, index: int) -> np.ndarray:
        """HxW int32 instance ids of an annotated frame (0 = background)."""
        ...

    def ignore(self, index: int) -> np.ndarray | None:
        """HxW bool mask of pixels not to score, or None where there are none."""
        ...


class ImageFiles:
    """One image file per frame, checked whole and decoded with OpenCV when read."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            return read_image_file(path)
        except ImageFileError as e:
            raise BadImageFile(path, e.problem) from None

    @cached_property
    def _size(self) -> tuple[int, int]:
        if not self.paths:
            raise ValueError("no frames")
        return image_size(self.paths[0])

    def size(self) -> tuple[int, int]:
        return self._size


@dataclass(frozen=True)
class VideoSequence:
    """One video of a data set: frame names, frames on demand, and (optionally) its ground truth.

    `annotated` lists the frame indices with ground truth (every frame for DAVIS and MOTS, every
    20th or so for FBMS, sparse for YouTube-VOS, none for plain folders and videos); `labels(i)`
    gives their instance ids, 0 being background.
    """

    name: str
    dataset: str  # one of DATASET_KINDS
    path: Path  # the folder or file the sequence was read from (named in errors)
    frame_names: tuple[str, ...] = field(repr=False)  # file stems, e.g. "00000", in frame order
    frames: FrameStore = field(repr=False, compare=False)
    truth: TruthStore | None = field(default=None, repr=False, compare=False)
    fps: float = 30.0
    categories: Mapping[int, str] = field(default_factory=dict, repr=False, compare=False)  # id -> class name

    def __len__(self) -> int:
        return len(self.frame_names)

    @property
    def annotated(self) -> tuple[int, ...]:
        """Frame indices that have ground truth (empty when the sequence has none)."""
        return self.truth.annotated if self.truth is not None else ()

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames, from the first frame's header."""
        return self.frames.size()

    def image(self, index: int) -> np.ndarray:
        """Frame `index` as HxWx3 uint8 RGB."""
        return self.frames.read(self._check_index(index))

    def frame(self, index: int, stamp_ns: int) -> Frame:
        """Frame `index` as a pipeline input."""
        return Frame(self.image(index), stamp_ns, self.name, index)

    def labels(self, index: int) -> np.ndarray:
        """HxW int32 instance ids of annotated frame `index` (0 = background); other frames raise."""
        self._check_annotated(index)
        labels = self.truth.labels(index)  # type: ignore[union-attr]
        if labels.shape != self.size:
            raise DatasetError(
                self.path,
                f"frame {self.frame_names[index]}: annotation is {labels.shape[1]}x{labels.shape[0]} "
                f"but the frames are {self.size[1]}x{self.size[0]}",
            )
        return labels

    def ignore(self, index: int) -> np.ndarray | None:
        """HxW bool mask of pixels not to score in annotated frame `index` (void, ignore regions), or None."""
        self._check_annotated(index)
        return self.truth.ignore(index)  # type: ignore[union-attr]

    def binary(self, index: int) -> np.ndarray:
        """HxW bool: any object (the binary moving-foreground truth) in annotated frame `index`."""
        return self.labels(index) > 0

    def _check_index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: frame index {index} out of range 0..{len(self) - 1}")
        return index

    def _check_annotated(self, index: int) -> None:
        self._check_index(index)
        if self.truth is None:
            raise DatasetError(self.path, f"sequence {self.name} has no ground truth")
        if index not in self._annotated_set:
            raise DatasetError(
                self.path, f"frame {self.frame_names[index]} (index {index}) of {self.name} is not annotated"
            )

    @cached_property
    def _annotated_set(self) -> frozenset[int]:
        return frozenset(self.annotated)
