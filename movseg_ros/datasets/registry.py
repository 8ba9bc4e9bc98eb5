"""open_dataset: recognise a data set's layout from its folder and read its sequences."""

from __future__ import annotations

from pathlib import Path

from movseg_ros.datasets import davis, fbms, mots, ytvos
from movseg_ros.datasets.errors import DatasetError
from movseg_ros.datasets.folders import open_folder_or_video
from movseg_ros.datasets.naming import list_images
from movseg_ros.datasets.sequence import VideoSequence

KINDS = ("auto", "davis", "fbms", "mots", "ytvos", "images", "video")

LOOKED_FOR = (
    "DAVIS (<seq>/JPEGImages/, or JPEGImages/480p/<seq>/), "
    "FBMS (Trainingset|Testset/<seq>/GroundTruth/, or <seq>/GroundTruth/), "
    "KITTI-MOTS (instances_txt/ + image_02/), MOTSChallenge (<seq>/img1/ + gt/gt.txt), "
    "YouTube-VOS (<split>/JPEGImages/<video>/ + meta.json), an image folder, or a video file"
)


def detect_kind(path: Path) -> str:
    """The layout at `path` (one of KINDS less "auto"); DatasetError listing what was looked for."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, "no such file or folder")
    if path.is_file():
        return "video"
    children = [p for p in sorted(path.iterdir()) if p.is_dir()]
    if (path / "JPEGImages").is_dir():
        if ytvos.is_split_folder(path):
            return "ytvos"
        return "davis"
    if (path / "instances_txt").is_dir() or (path / "img1").is_dir() or any((c / "img1").is_dir() for c in children):
        return "mots"
    if fbms.is_sequence_folder(path) or any((path / s).is_dir() for s in fbms.SPLITS):
        return "fbms"
    if any(fbms.is_sequence_folder(c) for c in children):
        return "fbms"
    if any((c / "JPEGImages").is_dir() for c in children):
        return "ytvos" if any(ytvos.is_split_folder(c) for c in children) else "davis"
    if list_images(path):
        return "images"
    raise DatasetError(path, f"no data set layout recognised; looked for {LOOKED_FOR}")


def open_dataset(
    path: str | Path, kind: str = "auto", names: list[str] | None = None, fps: float | None = None
) -> list[VideoSequence]:
    """The sequences at `path` (a data set root, one sequence, an image folder or a video), read lazily.

    `kind` forces a layout; `names` keeps only those sequences; `fps` applies to image folders
    and overrides a video's own rate.
    """
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "auto":
        kind = detect_kind(path)
    if kind == "davis":
        if (path / "JPEGImages").is_dir() and not davis.is_official_root(path):
            sequences = [davis.read_sequence(path)]
        else:
            sequences = davis.find_sequences(path, names)
    elif kind == "fbms":
        sequences = fbms.find_sequences(path, names)
    elif kind == "mots":
        sequences = mots.find_sequences(path, names)
    elif kind == "ytvos":
        sequences = ytvos.find_sequences(path, names)
    else:
        sequences = [open_folder_or_video(path, fps)]
    if names:  # single-sequence paths are checked here too
        found = sorted(s.name for s in sequences)
        missing = sorted(set(names) - set(found))
        if missing:
            raise DatasetError(path, f"no sequence(s) {missing}; found {found}")
        sequences = [s for s in sequences if s.name in names]
    if not sequences:
        raise DatasetError(path, f"no sequences found (layout: {kind})")
    return sequences
