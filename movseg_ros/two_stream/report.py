"""Seed 000's ablation pattern on our data (`movseg report two-stream`).

Two parts: (1) det/mask mAP@0.5 of the motion-only, appearance-only and joint models on the joint
weights' held-out synthetic split, with DIS flow as at inference (cf. seed 000 Tables 1-3), and the
appearance model's own objectness score for reference; (2) DAVIS J of `pipeline: two_stream` with the
motion-only, appearance-only and joint weights next to `pipeline: geometric`, scored by the same library
code as `movseg eval`, with frames/s.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import nn
from tqdm import tqdm

from movseg_ros.flow import DIS_PRESETS
from movseg_ros.pipeline import PipelineConfig
from movseg_ros.reports.common import ReportError, fmt, resolve_device
from movseg_ros.reports.davis_pipelines import (
    WARMUP_FRAMES, PipelineScore, davis_scores, davis_table, open_davis, pipeline_config,
)
from movseg_ros.reports.weights_files import (
    RecordedSplit, SeedRecord, check_rebuilds, recorded_overlap_notes, recorded_split,
)
from movseg_ros.reports.weights_files import check_heldout as check_split_seeds
from movseg_ros.synth.config import SynthConfig
from movseg_ros.training.detector_loop import DetectorTrainConfig
from movseg_ros.two_stream.arch import DetectorArch
from movseg_ros.two_stream.data import SynthDetectionData
from movseg_ros.two_stream.evaluate import detection_map
from movseg_ros.two_stream.weights import load_model

ROLES = {"motion": "motion", "appearance": "appearance", "joint": "two_stream"}  # weights role -> model kind


@dataclass(frozen=True)
class RowSpec:
    """One ablation row: which weights, scored on which labels."""

    name: str
    role: str  # motion | appearance | joint
    labels: str  # moving | objects
    paper: str  # the seed-000 table the row mirrors


ROWS = (
    RowSpec("motion-only", "motion", "moving", "Table 1 (motion stream)"),
    RowSpec("appearance-only", "appearance", "moving", "- (appearance cannot tell moving from static)"),
    RowSpec("appearance objectness", "appearance", "objects", "Table 2 (objectness, what it is trained for)"),
    RowSpec("joint two-stream", "joint", "moving", "Table 3 (joint model)"),
)


@dataclass(frozen=True)
class WeightsFile(SeedRecord):
    """A loaded weights file's identity and training record (from its meta)."""

    role: str
    path: Path
    kind: str
    meta: dict[str, Any] = field(repr=False, compare=False)

    @property
    def motion_input(self) -> str:
        """What the file's motion stream reads (flow or residual; files without the setting: flow)."""
        return DetectorArch.from_dict(self.meta.get("arch_settings") or {}).motion_input

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": str(self.path), "kind": self.kind, "iterations": self.meta.get("iterations"),
                "date": self.meta.get("date"), "backbone": (self.meta.get("arch_settings") or {}).get("backbone"),
                "min_size": self.meta.get("min_size"), "command": self.meta.get("command"), **self.seed_lists(),
                "motion_input": self.motion_input,
                "data": {k: self.data.get(k) for k in ("preset", "synth", "size")},
                "objectness_data": self.meta.get("objectness_data")}


def read_weights(path: Path | str, role: str) -> tuple[nn.Module, WeightsFile]:
    """The model of `role` (motion | appearance | joint) in eval mode, resized as it was trained (meta min_size).

    ModelFileError (naming the file) for a missing, corrupt or wrong-kind file. The joint model is built
    without its static branch: only its moving detections are scored.
    """
    if role not in ROLES:
        raise ValueError(f"weights role '{role}' is not one of {', '.join(ROLES)}")
    kind = ROLES[role]
    options = {"static_branch": False} if kind == "two_stream" else {}
    model, meta = load_model(path, kind, **options)
    min_size = meta.get("min_size")
    if isinstance(min_size, int) and min_size > 0:
        model.transform.min_size = (min_size,)
    return model, WeightsFile(role, Path(path), kind, meta)


@dataclass(frozen=True)
class HeldoutSplit(RecordedSplit):
    """The synthetic generator settings and clip seeds scored (the joint weights' held-out split by default)."""

    def synth_config(self) -> SynthConfig:
        """The generator config, rebuilt exactly as training's DetectorTrainConfig.synth_config()."""
        config = DetectorTrainConfig(preset=self.preset, synth=dict(self.synth), size=self.size)
        return config.synth_config()

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "synth": self.synth, "size": list(self.size),
                "seeds": [self.seeds.start, self.seeds.stop], "source": self.source}


def heldout_split(joint: WeightsFile, seeds: range | None = None) -> HeldoutSplit:
    """The joint weights' generator settings (meta["data"]) and held-out seeds, or `seeds` instead."""
    recorded = recorded_split(joint, seeds)
    split = HeldoutSplit(recorded.preset, recorded.synth, recorded.size, recorded.seeds, recorded.source)
    check_rebuilds(split, joint.path)
    return split


def check_heldout(split: HeldoutSplit, files: Sequence[WeightsFile]) -> list[str]:
    """ReportError naming the first file whose training seeds overlap the scored split; returns notes for
    files whose training seeds cannot be checked or whose generator settings differ from the split's, and
    for any file's own recorded held-out range that another file trained on."""
    return check_split_seeds(split, files) + recorded_overlap_notes(files)


@dataclass
class AblationRow:
    """One row of the ablation table: a model scored on one labelling of the held-out images."""

    name: str
    kind: str
    labels: str
    paper: str
    weights: str
    iterations: int | None
    date: str | None
    det_map50: float | None
    seg_map50: float | None
    images: int
    truth: int
    seconds: float


def score_ablation(split: HeldoutSplit, models: dict[str, tuple[nn.Module, WeightsFile]], images: int,
                   device: str = "cpu", dis_preset: str = "medium", min_pixels: int = 16) -> list[AblationRow]:
    """The four ROWS on the first `images` seeds of the split, flow estimated by DIS (as at inference)."""
    if images < 1:
        raise ReportError(f"--images must be >= 1, got {images}")
    if dis_preset not in DIS_PRESETS:
        raise ReportError(f"--dis-preset '{dis_preset}' is not one of {', '.join(DIS_PRESETS)}")
    dev = resolve_device(device)
    seeds = split.seeds[:images]
    config = split.synth_config()
    rows = []
    for spec in ROWS:
        model, info = models[spec.role]
        data = SynthDetectionData(config, seeds, info.kind, "dis", dis_preset, min_pixels, spec.labels,
                                  motion_input=info.motion_input)
        items = tqdm((data[i] for i in range(len(data))), total=len(data), desc=spec.name, unit="img",
                     file=sys.stderr, disable=None, leave=False)
        model.to(dev)
        start = time.perf_counter()
        scores = detection_map(model, items, dev)
        seconds = time.perf_counter() - start
        rows.append(AblationRow(spec.name, info.kind, spec.labels, spec.paper, str(info.path),
                                info.meta.get("iterations"), info.meta.get("date"), scores["det_map50"],
                                scores["seg_map50"], int(scores["images"]), int(scores["truth"]), seconds))
    return rows


def pipeline_configs(joint_weights: Path | str, device: str = "cpu", motion_weights: Path | str | None = None,
                     appearance_weights: Path | str | None = None) -> dict[str, PipelineConfig]:
    """`pipeline: two_stream` with the motion-only and appearance-only weights (where given) and the joint
    weights (eager: no compile time counts), and `pipeline: geometric`."""
    streams = {"motion_only": motion_weights, "appearance_only": appearance_weights, "two_stream": joint_weights}
    configs = {name: pipeline_config("two_stream", w, device) for name, w in streams.items() if w is not None}
    return {**configs, "geometric": pipeline_config("geometric")}


@dataclass(frozen=True)
class ReportSettings:
    """What `movseg report two-stream` was asked for."""

    motion: Path
    appearance: Path
    joint: Path
    images: int = 200
    heldout_seeds: range | None = None  # None: the joint weights' held-out split
    davis: Path | None = None  # None: skip the DAVIS part
    sequences: tuple[str, ...] = ()
    max_frames: int = 0  # DAVIS frames per sequence (0: all)
    device: str = "cpu"
    dis_preset: str = "medium"
    command: str = ""


@dataclass
class TwoStreamReport:
    """Everything the report found: the split, the files, the ablation rows and the DAVIS comparison."""

    command: str
    split: HeldoutSplit
    files: list[WeightsFile]
    rows: list[AblationRow]
    dis_preset: str
    device: str
    davis_root: str | None = None
    davis: list[PipelineScore] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "heldout": self.split.to_dict(), "flow": f"dis {self.dis_preset}",
                "device": self.device, "files": {f.role: f.to_dict() for f in self.files},
                "rows": [dataclasses.asdict(r) for r in self.rows], "davis_root": self.davis_root,
                "davis": None if self.davis is None else [p.to_dict() for p in self.davis], "notes": self.notes}


def two_stream_report(settings: ReportSettings) -> TwoStreamReport:
    """Load and check the three files, score the ablation rows, then (unless davis is None) the DAVIS part."""
    resolve_device(settings.device)
    if settings.images < 1:
        raise ReportError(f"--images must be >= 1, got {settings.images}")
    models = {"joint": read_weights(settings.joint, "joint"), "motion": read_weights(settings.motion, "motion"),
              "appearance": read_weights(settings.appearance, "appearance")}
    files = [models[role][1] for role in ("motion", "appearance", "joint")]
    split = heldout_split(models["joint"][1], settings.heldout_seeds)
    notes = check_heldout(split, files)
    sequences = open_davis(settings.davis, settings.sequences, settings.max_frames)
    if settings.images > len(split.seeds):
        notes.append(f"--images {settings.images} is more than the {len(split.seeds)} held-out seeds; all are scored")
    rows = score_ablation(split, models, settings.images, settings.device, settings.dis_preset)
    for model, _ in models.values():
        model.to("cpu")
    report = TwoStreamReport(settings.command, split, files, rows, settings.dis_preset, settings.device, notes=notes)
    if sequences is not None:
        report.davis_root = str(settings.davis)
        report.davis = davis_scores(sequences, pipeline_configs(settings.joint, settings.device, settings.motion,
                                                                settings.appearance))
    return report


def format_table(report: TwoStreamReport) -> str:
    """The plain-text tables: ablation rows, then DAVIS J per sequence and pipeline with frames/s."""
    s = report.split
    changed = "".join(f", {k}={v}" for k, v in s.synth.items())
    lines = [f"two-stream ablation on {report.rows[0].images if report.rows else 0} held-out synthetic images "
             f"(preset '{s.preset}'{changed}, {s.size[0]}x{s.size[1]}, seeds {s.seeds.start}:{s.seeds.stop} from "
             f"{s.source}; flow: dis {report.dis_preset}; device {report.device})",
             f"{'row':<24}{'labels':<9}{'det mAP50':>10}{'mask mAP50':>11}{'images':>8}{'truth':>7}{'iters':>7}"
             f"  {'date':<11}weights"]
    for r in report.rows:
        lines.append(f"{r.name:<24}{r.labels:<9}{fmt(r.det_map50):>10}{fmt(r.seg_map50):>11}{r.images:>8}"
                     f"{r.truth:>7}{r.iterations if r.iterations is not None else '-':>7}  {r.date or '-':<11}"
                     f"{r.weights}")
    lines.append("labels: moving = only moving objects are the class (seed 000's task); objects = every object")
    if report.davis is not None:
        lines += davis_table(report.davis, report.davis_root)
        lines.append(f"frames/s: inside Pipeline.process over all {report.davis[0].frames if report.davis else 0} "
                     f"frames after a {WARMUP_FRAMES}-frame warm-up (decoding excluded); two_stream eager "
                     f"on {report.davis[0].settings.get('two_stream', {}).get('device', '-') if report.davis else '-'}")
    for note in report.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def plot_report(report: TwoStreamReport, path: Path) -> Path:
    """PNG: grouped det/mask mAP bars per ablation row, and J per sequence and pipeline (with the means)."""
    from movseg_ros.plots import pyplot, save_figure

    plt = pyplot()
    panels = 2 if report.davis else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    ax = axes[0][0]
    x = np.arange(len(report.rows))
    for k, (key, label) in enumerate((("det_map50", "det mAP@0.5"), ("seg_map50", "mask mAP@0.5"))):
        values = [getattr(r, key) for r in report.rows]
        bars = ax.bar(x + (k - 0.5) * 0.38, [v or 0.0 for v in values], 0.38, label=label)
        for bar, v in zip(bars, values):
            ax.annotate(fmt(v, 2), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        va="bottom", fontsize=7)
    ax.set_xticks(x, [f"{r.name}\n({r.labels})" for r in report.rows], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"held-out synthetic ({report.rows[0].images if report.rows else 0} images, dis flow)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if report.davis:
        ax = axes[0][1]
        names = [row["sequence"] for row in report.davis[0].sequences] + ["mean"]
        x = np.arange(len(names))
        width = 0.8 / len(report.davis)
        for k, p in enumerate(report.davis):
            values = [row["J"] for row in p.sequences] + [p.mean_j]
            ax.bar(x + (k - (len(report.davis) - 1) / 2) * width, values, width,
                   label=f"{p.pipeline} (J {p.mean_j:.3f}, {p.fps:.1f} fps)")
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("J (region similarity)")
        ax.set_title(f"DAVIS {report.davis_root}", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, Path(path))
