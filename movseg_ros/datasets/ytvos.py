"""YouTube-VOS: <root>/<split>/JPEGImages/<video>/<frame>.jpg, Annotations/<video>/<frame>.png, meta.json.

Annotations are palette PNGs (index = object id) and sparse: in train every 5th frame of the
original video is kept and annotated; in valid/test only the frame where an object first appears.
meta.json ({"videos": {video: {"objects": {id: {"category": ..., "frames": [...]}}}}}) gives the
object categories.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.datasets.label_files import VOID, read_palette_indices
from movseg_ros.datasets.naming import check_no_missing_frames, list_images
from movseg_ros.datasets.sequence import ImageFiles, VideoSequence

SOURCE_FPS = 30.0  # YouTube-VOS frames are taken from 30 fps video
SPLITS = ("train", "valid", "test", "train_all_frames", "valid_all_frames", "test_all_frames")


class PaletteTruth:
    """Palette annotation files by frame index (index = object id, 255 = not scored)."""

    def __init__(self, files: dict[int, Path]) -> None:
        self.files = files
        self.annotated = tuple(sorted(files))

    def labels(self, index: int) -> np.ndarray:
        indices = read_palette_indices(self.files[index]).astype(np.int32)
        indices[indices == VOID] = 0
        return indices

    def ignore(self, index: int) -> np.ndarray | None:
        void = read_palette_indices(self.files[index]) == VOID
        return void if void.any() else None


def read_meta(split_dir: Path) -> dict[str, dict[int, str]]:
    """meta.json as video -> {object id: category}; empty if there is no meta.json."""
    path = split_dir / "meta.json"
    if not path.is_file():
        return {}
    try:
        videos = json.loads(path.read_text())["videos"]
        return {
            video: {int(obj): str(info.get("category", "")) for obj, info in entry.get("objects", {}).items()}
            for video, entry in videos.items()
        }
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise DatasetError(path, f"not a YouTube-VOS meta.json ({type(e).__name__}: {e})") from None


def read_sequence(split_dir: Path, video: str, categories: dict[int, str] | None = None) -> VideoSequence:
    """One video of a split folder."""
    image_dir = split_dir / "JPEGImages" / video
    images = list_images(image_dir, (".jpg", ".jpeg", ".png"))
    if not images:
        raise DatasetError(image_dir, "no frames (.jpg/.png) in this folder")
    stride = check_no_missing_frames(images, image_dir)
    index_of = {p.stem: i for i, p in enumerate(images)}
    files: dict[int, Path] = {}
    for png in list_images(split_dir / "Annotations" / video, (".png",)):
        if png.stem not in index_of:
            raise DatasetError(png, f"annotation has no frame {png.stem} in {image_dir}")
        files[index_of[png.stem]] = png
    truth = PaletteTruth(files) if files else None
    names = tuple(p.stem for p in images)
    return VideoSequence(video, "ytvos", image_dir, names, ImageFiles(images), truth, SOURCE_FPS / stride, categories or {})


def is_split_folder(folder: Path) -> bool:
    """JPEGImages/<video>/ holding frames directly (DAVIS's release has a resolution level in between)."""
    videos = folder / "JPEGImages"
    if not videos.is_dir():
        return False
    first = next((p for p in sorted(videos.iterdir()) if p.is_dir()), None)
    return first is not None and bool(list_images(first))


def find_sequences(root: Path, names: list[str] | None = None, split: str | None = None) -> list[VideoSequence]:
    """Videos of a split folder (or of <root>/<split> when `root` holds the splits), in name order."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "YouTube-VOS folder not found")
    split_dir = root / split if split else root
    if not is_split_folder(split_dir):
        present = [s for s in SPLITS if is_split_folder(root / s)]
        if split is None and len(present) == 1:
            split_dir = root / present[0]
        elif present and split is None:
            raise DatasetError(root, f"several YouTube-VOS splits {present}: pass one split folder or split=")
        else:
            raise DatasetError(split_dir, "not a YouTube-VOS split folder (looked for JPEGImages/<video>/<frame>.jpg)")
    meta = read_meta(split_dir)
    available = sorted(p.name for p in (split_dir / "JPEGImages").iterdir() if p.is_dir())
    if names:
        missing = sorted(set(names) - set(available))
        if missing:
            raise DatasetError(split_dir, f"no video(s) {missing}")
        available = [n for n in available if n in names]
    return [read_sequence(split_dir, video, meta.get(video)) for video in available]
