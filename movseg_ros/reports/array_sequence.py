"""A VideoSequence held in memory (generated clips, the built-in scene), so the readers' scoring code applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movseg_ros.datasets.sequence import VideoSequence


class ArrayFrames:
    """Frames from a (T, H, W, 3) uint8 RGB array."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> np.ndarray:
        return self.images[index]

    def size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])


class ArrayTruth:
    """Every frame annotated from a (T, H, W) integer array of instance ids (0 = background); nothing ignored."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self.annotated = tuple(range(len(ids)))

    def labels(self, index: int) -> np.ndarray:
        return self.ids[index].astype(np.int32)

    def ignore(self, index: int) -> np.ndarray | None:
        return None


def array_sequence(name: str, images: np.ndarray, ids: np.ndarray | None = None, fps: float = 30.0,
                   dataset: str = "synth") -> VideoSequence:
    """A sequence of `images` (T, H, W, 3) uint8 RGB with truth `ids` (T, H, W) when given."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8 or len(images) < 1:
        raise ValueError(f"{name}: images must be a non-empty (T, H, W, 3) uint8 array, got {images.shape} {images.dtype}")
    truth = None
    if ids is not None:
        ids = np.asarray(ids)
        if ids.shape != images.shape[:3]:
            raise ValueError(f"{name}: ids {ids.shape} do not match the images {images.shape[:3]}")
        truth = ArrayTruth(ids)
    names = tuple(f"{i:05d}" for i in range(len(images)))
    return VideoSequence(name, dataset, Path(name), names, ArrayFrames(images), truth, fps)
