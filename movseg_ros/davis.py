"""DAVIS-layout sequences (JPEGImages/ + Annotations/) for development and scoring."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import cv2
import numpy as np

from movseg_ros.frame import Frame

def default_root() -> Path:
    """The DAVIS dev set: $MOVSEG_DAVIS, else ../shared/data/davis2016 beside the checkout or the working folder."""
    if os.environ.get("MOVSEG_DAVIS"):
        return Path(os.environ["MOVSEG_DAVIS"])
    candidates = [Path(__file__).resolve().parent.parent.parent, Path.cwd().parent, Path.cwd()]
    for base in candidates:
        if (base / "shared" / "data" / "davis2016").is_dir():
            return base / "shared" / "data" / "davis2016"
    return candidates[0] / "shared" / "data" / "davis2016"


@dataclass(frozen=True)
class DavisSequence:
    """One sequence folder: sorted frame paths and, where present, annotation paths."""

    name: str
    images: list[Path]
    annotations: list[Path]

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> np.ndarray:
        """Frame i as HxWx3 uint8 RGB."""
        bgr = cv2.imread(str(self.images[i]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {self.images[i]}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def frame(self, i: int, stamp_ns: int) -> Frame:
        """Frame i as a pipeline input."""
        return Frame(self.image(i), stamp_ns, self.name, i)

    def truth(self, i: int) -> np.ndarray:
        """Binary ground truth of frame i (any non-zero label is foreground)."""
        m = cv2.imread(str(self.annotations[i]), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise ValueError(f"cannot read annotation {self.annotations[i]}")
        return (m if m.ndim == 2 else m[..., 0]) > 0


def read_sequence(folder: Path) -> DavisSequence:
    """A DAVIS sequence folder; errors name the folder and what is missing."""
    folder = Path(folder)
    images = sorted((folder / "JPEGImages").glob("*.jpg")) + sorted((folder / "JPEGImages").glob("*.png"))
    if not images:
        raise FileNotFoundError(f"{folder}: no frames in JPEGImages/")
    ann = sorted((folder / "Annotations").glob("*.png"))
    if ann and len(ann) != len(images):
        raise ValueError(f"{folder}: {len(images)} frames but {len(ann)} annotations")
    return DavisSequence(folder.name, images, ann)


def find_sequences(root: Path, names: list[str] | None = None) -> list[DavisSequence]:
    """Every sequence under `root` (or the named ones), in name order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DAVIS folder {root} not found")
    folders = sorted(p for p in root.iterdir() if (p / "JPEGImages").is_dir())
    if names:
        missing = set(names) - {p.name for p in folders}
        if missing:
            raise FileNotFoundError(f"{root}: no sequence(s) {sorted(missing)}")
        folders = [p for p in folders if p.name in names]
    return [read_sequence(p) for p in folders]
