"""What the reports read from a weights file's training record (its meta): the seed ranges it records, the
held-out split it gives, and the checks that the seeds a report scores were not trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from movseg_ros.model_files import ModelFileError
from movseg_ros.reports.common import ReportError
from movseg_ros.synth.config import SynthConfig
from movseg_ros.training.common import TrainConfigError


class SeedRecord:
    """The meta-reading half of a weights-file record; mixed into dataclasses with `role`, `path` and `meta`."""

    role: str
    path: Path
    meta: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        d = self.meta.get("data")
        return d if isinstance(d, dict) else {}

    @property
    def coco_trained(self) -> bool:
        """An appearance model trained on COCO images saw no synthetic clip, so no seed can overlap."""
        source = self.meta.get("objectness_data")
        return isinstance(source, dict) and bool(source.get("coco_annotations"))

    def seed_range(self, key: str) -> range | None:
        """meta['data'][key] as a range when it is [start, stop) of two integers, else None."""
        value = self.data.get(key)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
            return range(value[0], value[1])
        return None

    def seed_lists(self) -> dict[str, list[int] | None]:
        """train_seeds and heldout_seeds as [start, stop] for the JSON (no train_seeds for a COCO-trained file)."""
        train, held = self.seed_range("train_seeds"), self.seed_range("heldout_seeds")
        return {"train_seeds": None if self.coco_trained or train is None else [train.start, train.stop],
                "heldout_seeds": None if held is None else [held.start, held.stop]}


class SynthSplit(Protocol):
    """A held-out synthetic split as the checks read it."""

    preset: str
    synth: dict[str, Any]
    size: tuple[int, int]
    seeds: range
    source: str

    def synth_config(self) -> SynthConfig: ...


@dataclass(frozen=True)
class RecordedSplit:
    """The generator settings a file records (meta['data']) and the seeds to score, with where they came from."""

    preset: str
    synth: dict[str, Any]
    size: tuple[int, int]  # (width, height)
    seeds: range
    source: str


def recorded_split(record: SeedRecord, seeds: range | None = None) -> RecordedSplit:
    """The record's preset, generator changes and size with its heldout_seeds, or `seeds` instead;
    ModelFileError naming the file when any of them is missing or malformed."""
    data = record.data
    missing = [k for k in ("preset", "size") if k not in data]
    if missing:
        raise ModelFileError(record.path, f"meta['data'] has no {', '.join(missing)}: the synthetic data it was "
                                          f"trained on is unknown, so there is no held-out split to score")
    size = data["size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise ModelFileError(record.path, f"meta['data']['size'] is {size!r}, not [width, height]")
    source = "--heldout-seeds"
    if seeds is None:
        seeds = record.seed_range("heldout_seeds")
        if seeds is None or len(seeds) < 1:
            raise ModelFileError(record.path, "meta['data'] has no heldout_seeds [start, stop); give --heldout-seeds")
        source = f"heldout_seeds of {record.path}"
    return RecordedSplit(str(data["preset"]), dict(data.get("synth") or {}), (size[0], size[1]), seeds, source)


def check_rebuilds(split: SynthSplit, path: Path, what: str = "meta['data']") -> None:
    """ModelFileError naming `path` when the split's settings (`what`) do not rebuild a generator config."""
    try:
        split.synth_config()
    except (TrainConfigError, ValueError) as e:
        raise ModelFileError(path, f"{what} does not rebuild a generator config: {e}") from None


def _overlap(a: range, b: range) -> bool:
    return a.start < b.stop and b.start < a.stop


def check_heldout(split: SynthSplit, files: Sequence[SeedRecord]) -> list[str]:
    """ReportError naming the first file whose train_seeds overlap the split's seeds; notes for files whose
    training seeds are unknown (or COCO images) or whose generator settings differ from the split's."""
    notes = []
    seeds = split.seeds
    for f in files:
        if f.coco_trained:
            notes.append(f"{f.role} weights {f.path} were trained on COCO images: no synthetic seeds to overlap")
            continue
        train = f.seed_range("train_seeds")
        if train is None:
            notes.append(f"{f.role} weights {f.path} record no train_seeds: held-out overlap not checked")
        elif _overlap(seeds, train):
            raise ReportError(f"held-out seeds {seeds.start}:{seeds.stop} ({split.source}) overlap the train_seeds "
                              f"{train.start}:{train.stop} of the {f.role} weights {f.path}; the scores would not be "
                              f"held-out (choose --heldout-seeds outside every file's training range)")
        theirs = {k: f.data.get(k) for k in ("preset", "synth", "size")}
        ours = {"preset": split.preset, "synth": split.synth, "size": list(split.size)}
        if theirs != ours:
            notes.append(f"{f.role} weights {f.path} were trained on generator settings {theirs}, not the "
                         f"split's {ours}")
    return notes


def recorded_overlap_notes(files: Sequence[SeedRecord]) -> list[str]:
    """Notes for each file's own recorded heldout_seeds (not the split scored) that another file trained on."""
    notes = []
    for f in files:
        held = f.seed_range("heldout_seeds")
        for g in files:
            train = None if g.coco_trained else g.seed_range("train_seeds")
            if held is not None and train is not None and _overlap(held, train):
                notes.append(f"the heldout_seeds {held.start}:{held.stop} recorded in the {f.role} weights overlap "
                             f"the train_seeds {train.start}:{train.stop} of the {g.role} weights (not the split "
                             f"scored here)")
    return notes
