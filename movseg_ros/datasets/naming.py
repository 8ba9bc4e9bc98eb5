"""Frame file names: natural order, frame numbers, and the check that no frame is missing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from movseg_ros.datasets.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def natural_key(path: Path | str) -> list[int | str]:
    """Sort key that puts frame2 before frame10."""
    name = Path(path).name
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """The image files directly in `folder`, in natural order (empty if the folder is absent)."""
    if not folder.is_dir():
        return []
    wanted = tuple(suffixes)
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in wanted), key=natural_key)


def frame_number(stem: str) -> int | None:
    """The number a frame name ends with (cars1_07 -> 7, 00042 -> 42), or None."""
    match = _TRAILING_NUMBER.search(stem)
    return int(match.group(1)) if match else None


def check_no_missing_frames(paths: Sequence[Path], folder: Path) -> int:
    """Raise if the frame numbers skip one (or repeat); returns the step between frames (1 if unnumbered).

    Frames may be numbered with any constant step (YouTube-VOS keeps every 5th frame); a jump larger
    than the step means a frame file is missing, and the error names the first missing file.
    """
    numbers = [frame_number(p.stem) for p in paths]
    if len(paths) < 2 or any(n is None for n in numbers):
        return 1
    steps = [b - a for a, b in zip(numbers, numbers[1:])]
    for i, step in enumerate(steps):
        if step <= 0:
            raise DatasetError(folder, f"two frames share the number {numbers[i + 1]}: {paths[i].name} and {paths[i + 1].name}")
    stride = min(steps)
    for i, step in enumerate(steps):
        if step != stride:
            missing = _renumbered(paths[i], numbers[i] + stride)
            raise DatasetError(
                folder / missing,
                f"frame missing: {paths[i].name} is followed by {paths[i + 1].name}, "
                f"but frames are numbered every {stride}",
            )
    return stride


def _renumbered(path: Path, number: int) -> str:
    """`path`'s file name with its trailing frame number replaced by `number` (same zero padding)."""
    match = _TRAILING_NUMBER.search(path.stem)
    assert match is not None
    digits = match.group(1)
    return f"{path.stem[: match.start()]}{number:0{len(digits)}d}{path.suffix}"
