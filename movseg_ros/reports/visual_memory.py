"""`movseg report visual-memory`: seed 003's Tables 1-3 pattern on our data.

DAVIS binary J and F of MP-Net alone, the memory online and the memory offline (bidirectional), next to
the other pipelines (online, their shipped weights), scored like `movseg eval`; and each online
pipeline's frames/s on the built-in scene at 640x480 (the speed target's size).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.evaluation.sequence_eval import EvalProtocol, combine, jsonable, score_sequence
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.reports.common import fmt
from movseg_ros.reports.davis_pipelines import open_davis, pipeline_settings, run_stream, warm_up
from movseg_ros.reports.pipeline_speed import pipeline_speed, scene_frames
from movseg_ros.sources import stamp_ns

OTHERS = ("geometric", "two_stream", "stem_seg")


@dataclass(frozen=True)
class VisualMemoryReportSettings:
    """What the report runs: the two weights files, the other pipelines, the DAVIS data and the speed stream."""

    weights: Path | None = None  # None: the shipped models/visual_memory.pt
    mpnet: Path | None = None  # None: the shipped models/mpnet.pt
    others: tuple[str, ...] = ("geometric", "two_stream")
    davis: Path | None = None  # None: no DAVIS part
    sequences: tuple[str, ...] = ()
    max_frames: int = 0
    width: int = 640
    height: int = 480
    speed_frames: int = 30
    command: str = ""

    def __post_init__(self) -> None:
        unknown = [o for o in self.others if o not in OTHERS]
        if unknown:
            raise ValueError(f"--others {unknown} not among {', '.join(OTHERS)}")
        if self.max_frames < 0:
            raise ValueError(f"--max-frames must be >= 0, got {self.max_frames}")
        if self.speed_frames < 3 or min(self.width, self.height) < 32:
            raise ValueError("the speed part needs at least 3 frames of at least 32x32")

    def configs(self) -> dict[str, tuple[PipelineConfig, bool]]:
        """Row name -> (pipeline config, offline)."""
        own = {k: str(v) for k, v in (("weights", self.weights), ("mpnet_weights", self.mpnet)) if v is not None}
        memory = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": own})
        alone = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {**own, "memory": False}})
        rows = {"MP-Net alone": (alone, False), "memory online": (memory, False), "memory offline": (memory, True)}
        for name in self.others:
            learned = {name: {"accelerator": "eager"}} if name in ("two_stream", "stem_seg") else {}
            rows[name] = (PipelineConfig.from_dict({"pipeline": name, **learned}), False)
        return rows


@dataclass
class Row:
    """One pipeline (or mode) over the DAVIS sequences, and its speed."""

    name: str
    offline: bool
    settings: dict[str, Any]
    mean_j: float | None = None
    mean_f: float | None = None
    sequences: list[dict[str, Any]] = field(default_factory=list)  # {"sequence", "J", "F", "ms_per_frame"}
    davis_fps: float | None = None
    fps_640x480: float | None = None  # online rows: the built-in scene at the speed size


@dataclass
class VisualMemoryReport:
    settings: dict[str, Any]
    rows: list[Row]
    davis_root: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "davis_root": self.davis_root, "rows": [dataclasses.asdict(r) for r in self.rows]}


def _offline_labels(pipeline: Pipeline, seq: VideoSequence) -> tuple[list, float]:
    frames = [seq.frame(i, stamp_ns(i, seq.fps)) for i in range(len(seq))]
    start = time.perf_counter()
    outputs = pipeline.run_offline(frames)
    return [o.label_map for o in outputs], time.perf_counter() - start


def score_rows(sequences: Sequence[VideoSequence], configs: dict[str, tuple[PipelineConfig, bool]]) -> list[Row]:
    """Each row's pipeline over every sequence (online as a stream, or offline over the whole sequence)."""
    protocol = EvalProtocol(metrics=("davis",))
    rows = []
    for name, (config, offline) in configs.items():
        pipeline = Pipeline(config)
        if sequences and not offline:
            warm_up(pipeline, sequences[0])
        results, per_seq, seconds, frames = [], [], 0.0, 0
        for seq in tqdm(sequences, desc=f"davis {name}", unit="seq", file=sys.stderr, disable=None, leave=False):
            if offline:
                labels, took = _offline_labels(pipeline, seq)
            else:
                run = run_stream(pipeline, seq, name)
                labels, took = run.labels, run.seconds
            result = score_sequence(seq, labels, protocol)
            results.append(result)
            d = jsonable(result)["davis"]
            per_seq.append({"sequence": result["sequence"], "J": d["J"]["mean"], "F": d["F"]["mean"],
                            "ms_per_frame": 1000.0 * took / len(seq)})
            seconds, frames = seconds + took, frames + len(seq)
        overall = combine(results)["davis_binary"] if results else {}
        rows.append(Row(name, offline, pipeline_settings(config), overall.get("J-Mean"), overall.get("F-Mean"), per_seq,
                        frames / seconds if seconds > 0 else None))
    return rows


def visual_memory_report(settings: VisualMemoryReportSettings) -> VisualMemoryReport:
    configs = settings.configs()
    sequences = open_davis(settings.davis, settings.sequences, settings.max_frames) or []
    rows = score_rows(sequences, configs) if sequences else [
        Row(name, offline, pipeline_settings(config)) for name, (config, offline) in configs.items()]
    online = {name: config for name, (config, offline) in configs.items() if not offline}
    speed = pipeline_speed(online, scene_frames(settings.width, settings.height, settings.speed_frames))
    for row in rows:
        match = [s for s in speed if s.pipeline == row.name]
        row.fps_640x480 = match[0].fps if match else None
    return VisualMemoryReport({**dataclasses.asdict(settings), "weights": str(settings.weights or "shipped"),
                               "mpnet": str(settings.mpnet or "shipped"),
                               "davis": str(settings.davis) if settings.davis else None},
                              rows, str(settings.davis) if settings.davis else None)


def format_table(report: VisualMemoryReport) -> str:
    s = report.settings
    lines = [f"DAVIS binary J and F on {report.davis_root} (as movseg eval); frames/s on the built-in scene at "
             f"{s['width']}x{s['height']}" if report.davis_root else "no DAVIS part (--no-davis)",
             f"{'pipeline':<16}{'mode':>9}{'J':>8}{'F':>8}{'DAVIS f/s':>11}{'f/s ' + str(s['width']) + 'x' + str(s['height']):>13}"]
    for r in report.rows:
        lines.append(f"{r.name:<16}{'offline' if r.offline else 'online':>9}{fmt(r.mean_j):>8}{fmt(r.mean_f):>8}"
                     f"{fmt(r.davis_fps, 1):>11}{fmt(r.fps_640x480, 1) if not r.offline else '-':>13}")
    if report.rows and report.rows[0].sequences:
        lines += ["", "J per sequence", f"{'sequence':<20}" + "".join(f"{r.name[:14]:>16}" for r in report.rows)]
        for i, seq in enumerate(report.rows[0].sequences):
            lines.append(f"{seq['sequence']:<20}" + "".join(f"{fmt(r.sequences[i]['J']):>16}" for r in report.rows))
    return "\n".join(lines)


def plot_report(report: VisualMemoryReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.rows
    names = [r.name + (" (offline)" if r.offline and "offline" not in r.name else "") for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    x = range(len(rows))
    a.bar([i - 0.2 for i in x], [r.mean_j or 0 for r in rows], 0.4, label="J")
    a.bar([i + 0.2 for i in x], [r.mean_f or 0 for r in rows], 0.4, label="F")
    a.set_xticks(list(x), names, rotation=30, ha="right")
    a.set_ylim(0, 1)
    a.set_title("DAVIS J and F")
    a.legend()
    b.bar(list(x), [r.fps_640x480 or 0 for r in rows])
    b.set_xticks(list(x), names, rotation=30, ha="right")
    b.set_title(f"frames/s at {report.settings['width']}x{report.settings['height']} (online)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
