"""Old import path of the DAVIS reader: the old interface (binary `truth(i)`, `annotations` paths)
on top of movseg_ros.datasets.davis, so callers not yet moved keep working. New code imports
movseg_ros.datasets.davis, whose sequences are VideoSequences (labels, ignore, binary)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movseg_ros.datasets import davis as _davis
from movseg_ros.datasets.davis import default_root
from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.frame import Frame

__all__ = ["DavisSequence", "default_root", "find_sequences", "read_sequence"]


@dataclass(frozen=True)
class DavisSequence:
    """One sequence folder: sorted frame paths and, where present, annotation paths (old interface)."""

    name: str
    images: list[Path]
    annotations: list[Path]
    sequence: VideoSequence

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> np.ndarray:
        """Frame i as HxWx3 uint8 RGB."""
        return self.sequence.image(i)

    def frame(self, i: int, stamp_ns: int) -> Frame:
        """Frame i as a pipeline input."""
        return self.sequence.frame(i, stamp_ns)

    def truth(self, i: int) -> np.ndarray:
        """Binary ground truth of frame i (any object is foreground)."""
        return self.sequence.binary(i)


def _legacy(sequence: VideoSequence) -> DavisSequence:
    files = getattr(sequence.truth, "files", {})
    return DavisSequence(
        sequence.name, list(sequence.frames.paths), [files[i] for i in sorted(files)], sequence  # type: ignore[attr-defined]
    )


def read_sequence(folder: Path) -> DavisSequence:
    """A DAVIS sequence folder (JPEGImages/ and Annotations/)."""
    return _legacy(_davis.read_sequence(folder))


def find_sequences(root: Path, names: list[str] | None = None) -> list[DavisSequence]:
    """Every sequence under `root` (or the named ones), in name order."""
    return [_legacy(s) for s in _davis.find_sequences(root, names)]
