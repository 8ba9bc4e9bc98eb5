"""Predictions on disk: DAVIS-format PNG writers, and readers that line predictions up with the truth.

Written files are what the official DAVIS tools read: <folder>/<seq>/<frame>.png, either a binary
indexed PNG (index 1 = white: 0/1 to index readers, 0/255 grey to colour readers; DAVIS 2016)
or an indexed PNG with the DAVIS palette whose indices are object ids
(DAVIS 2017). Reading predictions back checks them against a truth sequence — a file that matches
no frame, or whose size differs, is an error naming the file — and reports which annotated frames
have no prediction, so a result over the present frames is marked partial, never silently scored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from movseg_ros.datasets.errors import BadImageFile, DatasetError, read_or_skip
from movseg_ros.datasets.label_files import (
    binary_palette, image_size, read_palette_indices, read_raw_labels, write_palette_png,
)
from movseg_ros.datasets.naming import frame_number, list_images
from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.evaluation.relabel import largest_tracks

MAX_PALETTE_ID = 254  # 255 is DAVIS's void index


@dataclass(frozen=True)
class WrittenPredictions:
    """What write_davis_predictions wrote: the sequence folder, one PNG per frame, and track id -> written id."""

    folder: Path
    paths: list[Path]
    ids: dict[int, int]


def write_davis_predictions(
    folder: str | Path,
    sequence_name: str,
    frames: Iterable[np.ndarray],
    mode: str = "instances",
    frame_names: Sequence[str] | None = None,
    renumber: bool = True,
    max_objects: int | None = None,
) -> WrittenPredictions:
    """Write label maps (0 = background, value = track id) as <folder>/<sequence_name>/<frame>.png.

    mode "binary": indexed PNG, any object = index 1 painted white (binary_palette), which both the
    DAVIS 2016 (0/255 grey) and the DAVIS 2017 (one object, id 1) tools read as one foreground.
    mode "instances": indexed PNG with the DAVIS palette, the DAVIS 2017 format. With `renumber`
    (default) track ids become 1..K in order of first appearance (frame order, then raster order),
    the same id for a track in every frame; without it ids are kept and must be 1..254.
    `max_objects` keeps only the K largest tracks by total area (the DAVIS 2017 unsupervised
    evaluation accepts at most 20); the rest become background.
    Frames are named by `frame_names` (the truth's names) or 00000, 00001, ...
    """
    if mode not in ("instances", "binary"):
        raise ValueError(f"mode must be 'instances' or 'binary', got {mode!r}")
    out = Path(folder) / sequence_name
    out.mkdir(parents=True, exist_ok=True)
    if max_objects is not None:
        frames = list(frames)
        keep = largest_tracks(frames, max_objects)
        frames = [np.where(np.isin(f, list(keep)), f, 0) for f in frames]
    paths: list[Path] = []
    ids: dict[int, int] = {}
    for k, labels in enumerate(frames):
        if labels.ndim != 2:
            raise DatasetError(out, f"frame {k}: label map must be HxW, got shape {labels.shape}")
        if frame_names is not None and k >= len(frame_names):
            raise DatasetError(out, f"more label maps than the {len(frame_names)} frame names given")
        path = out / f"{frame_names[k] if frame_names is not None else f'{k:05d}'}.png"
        if mode == "binary":
            write_palette_png(path, (labels > 0).astype(np.uint8), binary_palette())
        else:
            write_palette_png(path, _palette_ids(labels, ids, renumber, path))
        paths.append(path)
    return WrittenPredictions(out, paths, ids)


def _palette_ids(labels: np.ndarray, ids: dict[int, int], renumber: bool, path: Path) -> np.ndarray:
    """Map one frame's track ids to palette indices, extending `ids` (track -> index) as tracks appear."""
    flat = labels.ravel()
    values, first = np.unique(flat, return_index=True)
    order = [int(v) for v in values[np.argsort(first, kind="stable")] if v != 0]
    for track in order:
        if track in ids:
            continue
        index = len(ids) + 1 if renumber else track
        if not 1 <= index <= MAX_PALETTE_ID:
            problem = (
                f"more than {MAX_PALETTE_ID} objects in the sequence" if renumber
                else f"track id {track} does not fit a palette PNG (1..{MAX_PALETTE_ID}); write with renumber=True"
            )
            raise DatasetError(path, problem)
        ids[track] = index
    out = np.zeros(labels.shape, np.uint8)
    for track in order:
        out[labels == track] = ids[track]
    return out


@dataclass(frozen=True)
class Alignment:
    """Which annotated frames of a truth sequence have a prediction; `partial` when some do not."""

    sequence: str
    annotated: tuple[int, ...]
    present: tuple[int, ...]  # annotated frames with a prediction: the frames to score
    missing: tuple[int, ...]  # annotated frames without one
    missing_names: tuple[str, ...] = field(default=())

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def to_json(self) -> dict[str, Any]:
        """For result files: a partial result says so and lists what was not scored."""
        return {
            "sequence": self.sequence,
            "partial": self.partial,
            "annotated_frames": len(self.annotated),
            "scored_frames": len(self.present),
            "missing_frames": list(self.missing_names),
        }


def check_alignment(
    truth: VideoSequence,
    predictions: Sequence[np.ndarray | None] | Mapping[int, np.ndarray],
    source: str | Path = "predictions",
    allow_partial: bool = False,
) -> Alignment:
    """Line predictions (a list in frame order, or {frame index: label map}) up with `truth`.

    More predictions than frames, or a size different from the frames', is a DatasetError naming
    `source`; annotated frames without a prediction are an error too unless `allow_partial`, in
    which case the returned Alignment lists them and says partial.
    """
    if isinstance(predictions, Mapping):
        given = {int(i): p for i, p in predictions.items() if p is not None}
    else:
        if len(predictions) > len(truth):
            raise DatasetError(source, f"{len(predictions)} predicted frames but sequence {truth.name} has {len(truth)}")
        given = {i: p for i, p in enumerate(predictions) if p is not None}
    sizes = {i: tuple(p.shape[:2]) for i, p in given.items()}
    return _align(truth, sizes, {i: f"frame {i}" for i in given}, Path(source), allow_partial)


def _align(
    truth: VideoSequence, sizes: dict[int, tuple[int, ...]], where: dict[int, str], source: Path, allow_partial: bool
) -> Alignment:
    if not truth.annotated:
        raise DatasetError(truth.path, f"sequence {truth.name} has no ground truth to score against")
    height, width = truth.size
    for index, size in sorted(sizes.items()):
        if not 0 <= index < len(truth):
            raise DatasetError(source, f"{where[index]}: sequence {truth.name} has only frames 0..{len(truth) - 1}")
        if size != (height, width):
            raise DatasetError(
                source, f"{where[index]}: prediction is {size[1]}x{size[0]} but the frames of {truth.name} are {width}x{height}"
            )
    present = tuple(i for i in truth.annotated if i in sizes)
    missing = tuple(i for i in truth.annotated if i not in sizes)
    names = tuple(truth.frame_names[i] for i in missing)
    if missing and not allow_partial:
        raise DatasetError(
            source,
            f"no prediction for {len(missing)} of {len(truth.annotated)} annotated frames of {truth.name} "
            f"(first missing: {names[0]}); allow partial results to score only the present ones",
        )
    return Alignment(truth.name, truth.annotated, present, missing, names)


def read_prediction_png(path: Path) -> np.ndarray:
    """A prediction PNG as HxW int32 ids: palette indices, 16-bit values, 8-bit grey
    (0/255 masks read as id 1), or DAVIS-palette colours."""
    raw, kind = read_raw_labels(path)
    if kind == "colour":
        return read_palette_indices(path).astype(np.int32)
    labels = raw.astype(np.int32)
    if kind == "grey" and raw.dtype == np.uint8 and set(np.unique(raw).tolist()) <= {0, 255}:
        labels[labels == 255] = 1
    return labels


@dataclass(frozen=True)
class PredictionSet:
    """Prediction files of one sequence, lined up with its truth; label maps decoded on demand."""

    truth: VideoSequence
    folder: Path
    files: Mapping[int, Path]  # frame index -> file
    alignment: Alignment

    def labels(self, index: int) -> np.ndarray:
        """HxW int32 predicted ids of frame `index`."""
        if index not in self.files:
            raise DatasetError(self.folder, f"no prediction for frame {self.truth.frame_names[index]}")
        labels = read_prediction_png(self.files[index])
        if labels.shape != self.truth.size:  # the header said otherwise: a corrupt file
            raise DatasetError(self.files[index], f"decoded size {labels.shape} differs from the frames' {self.truth.size}")
        return labels

    def binary(self, index: int) -> np.ndarray:
        return self.labels(index) > 0

    def label_maps(self, skipped: dict[int, BadImageFile] | None = None) -> list[np.ndarray | None]:
        """One entry per frame of the sequence: its label map, or None where there is no file; with a
        `skipped` record, also None where the file is unreadable (the error recorded there)."""
        return [read_or_skip(self.labels, i, skipped) if i in self.files else None for i in range(len(self.truth))]


def prediction_dir(folder: Path, sequence: str) -> Path:
    """Where a sequence's PNGs are: <folder>/<seq>/, <folder>/<seq>/labels/, <folder>/ or <folder>/labels/."""
    candidates = [folder / sequence, folder / sequence / "labels", folder, folder / "labels"]
    for candidate in candidates:
        if list_images(candidate, (".png",)):
            return candidate
    raise DatasetError(folder, f"no prediction PNGs for sequence {sequence} (looked in {[str(c) for c in candidates]})")


def read_prediction_folder(folder: str | Path, truth: VideoSequence, allow_partial: bool = False) -> PredictionSet:
    """The prediction PNGs of `truth`'s sequence, checked against it.

    Files are matched to frames by name (00000.png for frame 00000); if not every file name is a
    frame name and all are numbers, a file's number is taken as the frame index (as `movseg run`
    names its labels/). A file matching no frame, or of another size, is an error naming it.
    """
    directory = prediction_dir(Path(folder), truth.name)
    pngs = list_images(directory, (".png",))
    files = _files_by_frame(pngs, truth, directory)
    sizes = {i: image_size(p) for i, p in files.items()}
    alignment = _align(truth, sizes, {i: p.name for i, p in files.items()}, directory, allow_partial)
    return PredictionSet(truth, directory, files, alignment)


def _files_by_frame(pngs: list[Path], truth: VideoSequence, directory: Path) -> dict[int, Path]:
    index_of = {name: i for i, name in enumerate(truth.frame_names)}
    if all(p.stem in index_of for p in pngs):
        return {index_of[p.stem]: p for p in pngs}
    numbers = [frame_number(p.stem) if p.stem.isdigit() else None for p in pngs]
    if all(n is not None for n in numbers):
        for path, number in zip(pngs, numbers):
            if not 0 <= number < len(truth):  # type: ignore[operator]
                raise DatasetError(
                    path, f"prediction file matches no frame: sequence {truth.name} has frames 0..{len(truth) - 1}"
                )
        return {int(n): p for p, n in zip(pngs, numbers)}  # type: ignore[arg-type]
    stray = next(p for p in pngs if p.stem not in index_of)
    raise DatasetError(
        stray, f"prediction file matches no frame of {truth.name} (frames {truth.frame_names[0]}..{truth.frame_names[-1]})"
    )
