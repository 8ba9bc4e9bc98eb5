"""Pipelines run online over video sequences as streams, and scored on DAVIS the way `movseg eval` scores them.

Shared by the reports: `run_stream` pushes every frame of a sequence through a Pipeline and then calls
finish() (a near-online pipeline hands its held frames over there), timing each call; `davis_scores`
puts any set of pipeline configs through the DAVIS sequences and gives binary J and frames/s.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from movseg_ros.datasets import open_dataset
from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.evaluation.sequence_eval import EvalProtocol, combine, jsonable, score_sequence
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.reports.common import fmt
from movseg_ros.sources import stamp_ns

WARMUP_FRAMES = 2  # frames run untimed first (the second one is a two-frame model's first call)
LEARNED = ("two_stream", "stem_seg")  # pipelines that load weights


class _FirstFrames:
    """The first `n` frames of a frame store."""

    def __init__(self, store: Any, n: int) -> None:
        self.store, self.n = store, n

    def __len__(self) -> int:
        return self.n

    def read(self, index: int) -> np.ndarray:
        return self.store.read(index)

    def size(self) -> tuple[int, int]:
        return self.store.size()


class _FirstTruth:
    """A truth store limited to the frames below `n`."""

    def __init__(self, truth: Any, n: int) -> None:
        self.truth = truth
        self.annotated = tuple(i for i in truth.annotated if i < n)

    def labels(self, index: int) -> np.ndarray:
        return self.truth.labels(index)

    def ignore(self, index: int) -> np.ndarray | None:
        return self.truth.ignore(index)


def first_frames(seq: VideoSequence, n: int) -> VideoSequence:
    """The sequence cut to its first `n` frames (n <= 0 or >= its length: unchanged), for quick runs."""
    if n <= 0 or n >= len(seq):
        return seq
    truth = _FirstTruth(seq.truth, n) if seq.truth is not None else None
    return dataclasses.replace(seq, frame_names=seq.frame_names[:n], frames=_FirstFrames(seq.frames, n), truth=truth)


def open_davis(root: Path | None, names: Sequence[str] = (), max_frames: int = 0) -> list[VideoSequence] | None:
    """The DAVIS sequences under `root` (all, or `names`), each cut to `max_frames` (0: all); None for no root.

    Reports open the data before their long scoring, so that a bad root fails at once.
    """
    if root is None:
        return None
    return [first_frames(s, max_frames) for s in open_dataset(root, "davis", list(names) or None)]


def pipeline_config(name: str, weights: Path | str | None = None, device: str = "cpu") -> PipelineConfig:
    """`pipeline: name` with its defaults; a learned one with `weights` on `device`, eager (no compile time counts)."""
    if name not in LEARNED:
        return PipelineConfig.from_dict({"pipeline": name})
    if weights is None:
        raise ValueError(f"pipeline {name} needs a weights file")
    return PipelineConfig.from_dict({"pipeline": name, name: {"weights": str(weights), "accelerator": "eager",
                                                              "device": device}})


def pipeline_settings(config: PipelineConfig) -> dict[str, Any]:
    """The config's pipeline name and that pipeline's own settings (for the JSON)."""
    return {"pipeline": config.pipeline, config.pipeline: config.to_dict()[config.pipeline]}


@dataclass
class StreamRun:
    """One sequence pushed through a pipeline: the label maps in frame order and how long each call took."""

    labels: list[np.ndarray]
    call_seconds: list[float]  # one per process() call, then the finish() call last
    published_by: list[int]  # per output frame: the call (index into call_seconds) that returned it

    @property
    def seconds(self) -> float:
        return float(sum(self.call_seconds))


def run_stream(pipeline: Pipeline, seq: VideoSequence, desc: str = "") -> StreamRun:
    """Every frame through `pipeline.process`, then `finish()`; the pipeline is reset first. Decoding is not timed.

    RuntimeError when the outputs are not one per frame, in order.
    """
    pipeline.reset()
    labels: list[np.ndarray] = []
    calls: list[float] = []
    published: list[int] = []
    for i in range(len(seq)):
        frame = seq.frame(i, stamp_ns(i, seq.fps))
        start = time.perf_counter()
        outputs = pipeline.process(frame)
        calls.append(time.perf_counter() - start)
        labels += [o.label_map for o in outputs]
        published += [i] * len(outputs)
    start = time.perf_counter()
    outputs = pipeline.finish()
    calls.append(time.perf_counter() - start)
    labels += [o.label_map for o in outputs]
    published += [len(seq)] * len(outputs)
    name = desc or pipeline.name
    if len(labels) != len(seq):
        raise RuntimeError(f"{seq.name}: {len(seq)} frames in but {len(labels)} outputs from {name}")
    return StreamRun(labels, calls, published)


def warm_up(pipeline: Pipeline, seq: VideoSequence) -> float:
    """Run frames untimed until WARMUP_FRAMES have gone in and an output came back (a near-online pipeline's
    first clip), or the sequence ends; then finish() and reset. Returns the seconds it took."""
    start = time.perf_counter()
    got = 0
    for i in range(len(seq)):
        got += len(pipeline.process(seq.frame(i, stamp_ns(i, seq.fps))))
        if i + 1 >= WARMUP_FRAMES and got:
            break
    pipeline.finish()
    pipeline.reset()
    return time.perf_counter() - start


@dataclass
class PipelineScore:
    """DAVIS J of one pipeline over the sequences, and its speed measured while it ran."""

    pipeline: str
    settings: dict[str, Any]
    mean_j: float
    sequences: list[dict[str, Any]]  # {"sequence", "frames", "J" (mean), "J_recall", "J_decay", "ms_per_frame"}
    frames: int
    seconds: float  # inside Pipeline.process and finish, frame decoding and the warm-up excluded
    warmup_seconds: float = 0.0  # the untimed first frames (first model call: lazy initialisation)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fps": self.fps}


def davis_scores(sequences: Sequence[VideoSequence], configs: dict[str, PipelineConfig]) -> list[PipelineScore]:
    """Each pipeline run online over every sequence and scored like `movseg eval` (binary J, all annotated frames).

    Speed is measured inside Pipeline.process and finish after an untimed warm-up on the first sequence
    (`warm_up`: a first model call costs seconds of one-off initialisation).
    """
    protocol = EvalProtocol(metrics=("davis",))
    out = []
    for name, config in configs.items():
        pipeline = Pipeline(config)
        warmup = warm_up(pipeline, sequences[0]) if sequences else 0.0
        results, timings, total_s, total_frames = [], [], 0.0, 0
        for seq in tqdm(sequences, desc=f"davis {name}", unit="seq", file=sys.stderr, disable=None, leave=False):
            run = run_stream(pipeline, seq, name)
            results.append(score_sequence(seq, run.labels, protocol))
            timings.append(1000.0 * run.seconds / len(seq))
            total_s += run.seconds
            total_frames += len(seq)
        overall = combine(results)
        rows = []
        for r, ms in zip(results, timings):
            j = jsonable(r)["davis"]["J"]
            rows.append({"sequence": r["sequence"], "frames": r["frames_scored"], "J": j["mean"],
                         "J_recall": j["recall"], "J_decay": j["decay"], "ms_per_frame": ms})
        out.append(PipelineScore(name, pipeline_settings(config), float(overall["davis_binary"]["J-Mean"]), rows,
                                 total_frames, total_s, warmup))
    return out


def davis_table(davis: Sequence[PipelineScore], root: str | None) -> list[str]:
    """The DAVIS part of a report's text: J per sequence (rows) and pipeline (columns), mean J and frames/s."""
    names = [row["sequence"] for row in davis[0].sequences] if davis else []
    lines = [f"DAVIS binary J on {root} (online, every annotated frame, as movseg eval)",
             f"{'sequence':<20}" + "".join(f"{p.pipeline:>12}" for p in davis)]
    for i, name in enumerate(names):
        lines.append(f"{name:<20}" + "".join(f"{p.sequences[i]['J']:>12.3f}" for p in davis))
    lines.append(f"{'mean J':<20}" + "".join(f"{p.mean_j:>12.3f}" for p in davis))
    lines.append(f"{'frames/s':<20}" + "".join(f"{fmt(p.fps, 1):>12}" for p in davis))
    return lines
