"""Image folders and video files as VideoSequences without ground truth (opened by movseg_ros.sources)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.datasets.sequence import ImageFiles, VideoSequence
from movseg_ros.sources import ImageFolderSource, SourceError, VideoSource, open_source


class VideoFrames:
    """Frames of a video file, decoded on demand; reading in order does not seek."""

    def __init__(self, path: Path, count: int, size: tuple[int, int]) -> None:
        self.path, self.count, self._size = path, count, size
        self._capture: cv2.VideoCapture | None = None
        self._next = 0  # index the open capture decodes next

    def __len__(self) -> int:
        return self.count

    def size(self) -> tuple[int, int]:
        return self._size

    def read(self, index: int) -> np.ndarray:
        if self._capture is None or index != self._next:
            self._open_at(index)
        assert self._capture is not None
        ok, bgr = self._capture.read()
        if not ok:
            self.close()
            raise DatasetError(self.path, f"cannot decode frame {index} (the container says {self.count} frames)")
        self._next = index + 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _open_at(self, index: int) -> None:
        if self._capture is None:
            self._capture = cv2.VideoCapture(str(self.path))
            if not self._capture.isOpened():
                self._capture = None
                raise DatasetError(self.path, "cannot open the video")
            self._next = 0
        if index != self._next:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._next = index

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture, self._next = None, 0


def open_folder_or_video(path: Path, fps: float | None = None) -> VideoSequence:
    """An image folder (frames in natural order) or a video file, as a sequence without truth."""
    try:
        source = open_source(path, fps)
    except SourceError as e:
        raise DatasetError(path, str(e)) from None
    if isinstance(source, ImageFolderSource):
        paths = source.paths
        return VideoSequence(source.name, "images", Path(path), tuple(p.stem for p in paths), ImageFiles(paths), None, source.fps)
    assert isinstance(source, VideoSource)
    return _video_sequence(source)


def _video_sequence(source: VideoSource) -> VideoSequence:
    capture = cv2.VideoCapture(str(source.path))
    try:
        size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
    finally:
        capture.release()
    if source.count <= 0 or min(size) <= 0:
        raise DatasetError(source.path, "the video reports no frames or no frame size")
    names = tuple(f"{i:05d}" for i in range(source.count))
    return VideoSequence(source.name, "video", source.path, names, VideoFrames(source.path, source.count, size), None, source.fps)
