"""DAVIS 2016 / 2017 sequences, from a flat folder of sequences or the official release layout.

Flat (our dev set):      <root>/<seq>/JPEGImages/00000.jpg, <root>/<seq>/Annotations/00000.png
Official:                <root>/JPEGImages/480p/<seq>/..., <root>/Annotations/480p/<seq>/...,
                         <root>/ImageSets/2017/val.txt (sequence names) or ImageSets/480p/val.txt (path pairs)
Annotations are detected per file: a grey PNG is DAVIS 2016 binary truth (non-zero = object, label 1);
an indexed (palette) PNG is DAVIS 2017 instance truth (index = object id, 255 = void, not scored).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movseg_ros.datasets.errors import BadImageFile, DatasetError
from movseg_ros.datasets.label_files import VOID, read_palette_indices, read_raw_labels
from movseg_ros.datasets.naming import check_no_missing_frames, list_images
from movseg_ros.datasets.sequence import ImageFiles, VideoSequence

DAVIS_FPS = 24.0  # DAVIS videos are 24 frames a second
RESOLUTIONS = ("480p", "Full-Resolution", "1080p")

DavisSequence = VideoSequence  # the name callers used before the datasets package


def default_root() -> Path:
    """The DAVIS dev set: $MOVSEG_DAVIS, else ../shared/data/davis2016 beside the checkout or the working folder."""
    if os.environ.get("MOVSEG_DAVIS"):
        return Path(os.environ["MOVSEG_DAVIS"])
    candidates = [Path(__file__).resolve().parents[3], Path.cwd().parent, Path.cwd()]
    for base in candidates:
        if (base / "shared" / "data" / "davis2016").is_dir():
            return base / "shared" / "data" / "davis2016"
    return candidates[0] / "shared" / "data" / "davis2016"


@dataclass
class DavisTruth:
    """Annotation files by frame index; decoded on demand (grey = binary 2016, palette = 2017 instances)."""

    files: dict[int, Path]

    @property
    def annotated(self) -> tuple[int, ...]:
        return tuple(sorted(self.files))

    def labels(self, index: int) -> np.ndarray:
        labels, _ = self._decode(index)
        return labels

    def ignore(self, index: int) -> np.ndarray | None:
        _, void = self._decode(index)
        return void

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        path = self.files[index]
        raw, kind = read_raw_labels(path)
        if kind == "grey":
            return (raw > 0).astype(np.int32), None
        indices = read_palette_indices(path) if kind == "colour" else raw
        void = indices == VOID
        labels = indices.astype(np.int32)
        labels[void] = 0
        return labels, (void if void.any() else None)


def annotation_kind(path: Path) -> str:
    """"davis2016" for a grey (binary) annotation file, "davis2017" for an indexed or colour one."""
    _, kind = read_raw_labels(path)
    return "davis2016" if kind == "grey" else "davis2017"


def _dataset_kind(files: dict[int, Path]) -> str:
    """annotation_kind of the first annotation file that reads: a cut-off one is left for scoring to
    report (or, with partial results allowed, to leave out); when none reads, the first one's error."""
    for index in sorted(files):
        try:
            return annotation_kind(files[index])
        except BadImageFile:
            continue
    return annotation_kind(files[min(files)])


def read_sequence(folder: Path, annotations: Path | None = None, name: str | None = None) -> VideoSequence:
    """One DAVIS sequence: `folder` holds the frames (or JPEGImages/ and Annotations/ beneath it).

    Every frame must be annotated, or only the first one (the semi-supervised test layout);
    any other gap is an error naming the missing annotation file.
    """
    folder = Path(folder)
    if annotations is None and (folder / "JPEGImages").is_dir():
        image_dir, annotation_dir = folder / "JPEGImages", folder / "Annotations"
    else:
        image_dir, annotation_dir = folder, annotations
    images = list_images(image_dir, (".jpg", ".jpeg", ".png"))
    if not images:
        raise DatasetError(image_dir, "no frames (.jpg/.png) in this folder")
    check_no_missing_frames(images, image_dir)
    names = tuple(p.stem for p in images)
    files = _annotation_files(annotation_dir, images) if annotation_dir is not None else {}
    dataset = _dataset_kind(files) if files else "davis2016"
    truth = DavisTruth(files) if files else None
    return VideoSequence(name or folder.name, dataset, folder, names, ImageFiles(images), truth, DAVIS_FPS)


def _annotation_files(annotation_dir: Path, images: list[Path]) -> dict[int, Path]:
    """Annotation PNG of each frame index; an annotation without a frame, or a gap, is an error."""
    pngs = list_images(annotation_dir, (".png",))
    if not pngs:
        return {}
    index_of = {p.stem: i for i, p in enumerate(images)}
    files: dict[int, Path] = {}
    for png in pngs:
        if png.stem not in index_of:
            raise DatasetError(png, f"annotation has no frame {png.stem} in {images[0].parent}")
        files[index_of[png.stem]] = png
    if len(files) == len(images) or set(files) == {0}:
        return files
    first_gap = next(i for i in range(len(images)) if i not in files)
    raise DatasetError(
        annotation_dir / f"{images[first_gap].stem}.png",
        f"annotation missing for frame {images[first_gap].name}: {len(files)} of {len(images)} frames are "
        "annotated (DAVIS annotates every frame, or only the first)",
    )


def is_official_root(root: Path) -> bool:
    """True for the release layout (JPEGImages/<resolution>/<seq>/)."""
    return any((root / "JPEGImages" / r).is_dir() for r in RESOLUTIONS)


def find_sequences(
    root: Path,
    names: list[str] | None = None,
    split: str | None = None,
    year: str | None = None,
    resolution: str = "480p",
) -> list[VideoSequence]:
    """Every sequence under `root` (or the named ones, or those of ImageSets/<year>/<split>.txt), in name order."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "DAVIS folder not found")
    if is_official_root(root):
        image_root, annotation_root = root / "JPEGImages" / resolution, root / "Annotations" / resolution
        if not image_root.is_dir():
            found = [r for r in RESOLUTIONS if (root / "JPEGImages" / r).is_dir()]
            raise DatasetError(image_root, f"no such resolution folder; found {found}")
        available = sorted(p.name for p in image_root.iterdir() if p.is_dir())
    else:
        available = sorted(p.name for p in root.iterdir() if (p / "JPEGImages").is_dir())
    if not available:
        raise DatasetError(
            root, "no DAVIS sequences (looked for <seq>/JPEGImages/ and JPEGImages/480p/<seq>/)"
        )
    if split is not None:
        listed = split_sequences(root, split, year, resolution)
        names = [n for n in listed if not names or n in names]
    if names:
        missing = sorted(set(names) - set(available))
        if missing:
            raise DatasetError(root, f"no sequence(s) {missing}; found {available}")
        available = [n for n in available if n in names]
    if is_official_root(root):
        return [read_sequence(image_root / n, annotation_root / n) for n in available]
    return [read_sequence(root / n) for n in available]


def split_sequences(root: Path, split: str, year: str | None = None, resolution: str = "480p") -> list[str]:
    """Sequence names of a split: ImageSets/<year>/<split>.txt (one name a line, DAVIS 2017 release)
    or ImageSets/<resolution>/<split>.txt (frame path pairs, DAVIS 2016 release)."""
    folders = [year] if year else ["2017", "2016", resolution]
    for sub in folders:
        listing = root / "ImageSets" / sub / f"{split}.txt"
        if listing.is_file():
            return _names_in_listing(listing)
    tried = [str(root / "ImageSets" / sub / f"{split}.txt") for sub in folders]
    raise DatasetError(root, f"no split file for {split!r}; looked for {tried}")


def _names_in_listing(listing: Path) -> list[str]:
    """Names from a split file: a bare name a line, or '/JPEGImages/480p/<seq>/00000.jpg ...' lines."""
    names: list[str] = []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        words = line.split()
        if not words:
            continue
        parts = Path(words[0]).parts
        name = parts[-2] if len(parts) >= 2 and "JPEGImages" in parts else words[0]
        if "/" in name:
            raise DatasetError(listing, f"line {number}: cannot read a sequence name from {line!r}")
        if name not in names:
            names.append(name)
    return names
