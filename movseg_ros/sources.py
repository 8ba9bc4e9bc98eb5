"""Offline inputs as streams of Frames: a video file, an image folder or a DAVIS sequence folder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from movseg_ros.frame import Frame
from movseg_ros.image_format import PATH_LIMIT, ImageFileError, read_image_file
from movseg_ros.safe_text import printable

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_FPS = 30.0


class SourceError(ValueError):
    """An input that cannot be read; the message names the path or file at fault."""


@dataclass(frozen=True)
class ImageFolderSource:
    """Sorted still images read one by one; `kind` says whether it is a plain folder or a DAVIS one."""

    name: str
    kind: str  # "images" or "davis"
    path: Path  # the folder given
    paths: tuple[Path, ...]
    fps: float

    def __len__(self) -> int:
        return len(self.paths)

    def frames(self, max_frames: int | None = None, skipped: list[ImageFileError] | None = None) -> Iterator[Frame]:
        """The images in order, each checked whole; a bad one is a SourceError naming it, or, when a
        `skipped` list is given, appended there and left out (its index and stamp stay unused)."""
        first: tuple[Path, tuple[int, ...]] | None = None
        paths = self.paths[:max_frames]
        for index, path in enumerate(paths):
            try:
                rgb = read_image_file(path)
            except ImageFileError as e:
                if skipped is None:
                    raise SourceError(str(e)) from None
                skipped.append(e)
                continue
            if first is None:
                first = (path, rgb.shape)
            elif rgb.shape != first[1]:
                raise SourceError(f"{printable(path, PATH_LIMIT)} is {_size(rgb.shape)} but the first frame, "
                                  f"{printable(first[0].name)}, is {_size(first[1])}: every frame of a folder "
                                  "must be the same size")
            yield Frame(rgb, stamp_ns(index, self.fps), index=index)
        if first is None and skipped:
            raise SourceError(f"{printable(self.path, PATH_LIMIT)}: none of the {len(paths)} images could be "
                              f"read; the first: {skipped[0]}")


@dataclass(frozen=True)
class VideoSource:
    """A video file decoded by OpenCV; stamps follow its frame rate unless one is given."""

    name: str
    path: Path
    fps: float
    count: int  # frame count from the container; may be approximate

    kind = "video"

    def __len__(self) -> int:
        return self.count

    def frames(self, max_frames: int | None = None, skipped: list[ImageFileError] | None = None) -> Iterator[Frame]:
        """The decoded frames in order; a video has no frame files, so `skipped` (kept for the common
        interface with ImageFolderSource) is never added to: decoding stops at the first bad frame."""
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise SourceError(f"cannot open video {self.path}")
        try:
            index = 0
            while max_frames is None or index < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stamp_ns(index, self.fps), index=index)
                index += 1
        finally:
            capture.release()
        if index == 0 and max_frames != 0:
            raise SourceError(f"video {self.path} has no readable frames")


Source = ImageFolderSource | VideoSource


def stamp_ns(index: int, fps: float) -> int:
    """Stamp of frame `index` of a stream starting at 0 and running at `fps`."""
    return round(index * 1e9 / fps)


def open_source(path: str | Path, fps: float | None = None) -> Source:
    """The source at `path`: a DAVIS sequence (has JPEGImages/), an image folder, or a video file."""
    path = Path(path)
    if fps is not None and fps <= 0:
        raise SourceError(f"fps must be positive, got {fps}")
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_dir():
        davis = (path / "JPEGImages").is_dir()
        folder = path / "JPEGImages" if davis else path
        images = tuple(sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key))
        if not images:
            raise SourceError(f"{folder}: no {'/'.join(IMAGE_SUFFIXES)} images in this folder")
        return ImageFolderSource(path.name, "davis" if davis else "images", path, images, fps or DEFAULT_FPS)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError(f"cannot open video {path} (not a video OpenCV can decode?)")
        native = capture.get(cv2.CAP_PROP_FPS)
        count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        capture.release()
    return VideoSource(path.stem, path, fps or (native if native > 0 else DEFAULT_FPS), count)


def _size(shape: tuple[int, ...]) -> str:
    """An image shape as WxH for a message."""
    return f"{shape[1]}x{shape[0]}"


def _natural_key(path: Path) -> list[int | str]:
    """Sort key that puts frame2 before frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]
