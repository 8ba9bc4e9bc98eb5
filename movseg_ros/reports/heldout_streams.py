"""Pipelines run as streams over clips with instance truth (held-out synthetic clips) and scored per instance.

Each clip is one stream: every frame through `process`, then `finish`. Scores come from the library's
protocol code: DAVIS-2017-unsupervised instance J&F (tracks relabelled 1..K, Hungarian-matched to the
objects over the whole clip), binary J of the foreground, and trackeval's CLEAR id switches (IDS).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from tqdm import tqdm

from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.evaluation.davis_metrics import summarise
from movseg_ros.evaluation.errors import MetricInputError
from movseg_ros.evaluation.sequence_eval import EvalProtocol, combine, score_sequence
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.reports.davis_pipelines import pipeline_settings, run_stream, warm_up


@dataclass
class StreamScore:
    """Instance and binary scores of one pipeline over the clips, and its speed while it ran."""

    pipeline: str
    settings: dict[str, Any]
    instance_jf: float | None  # DAVIS-2017 unsupervised J&F-Mean over all objects of all clips
    instance_j: float | None
    instance_f: float | None
    binary_j: float  # J-Mean of the foreground (one object a clip)
    id_switches: int | None  # CLEAR IDSW summed over the clips
    clips: list[dict[str, Any]]  # per clip: sequence, frames, objects, instance_jf, binary_j, id_switches
    frames: int
    seconds: float  # inside process and finish, the warm-up excluded
    warmup_seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fps": self.fps}


def _instances(result: dict[str, Any]) -> tuple[float | None, int]:
    """A clip's instance J&F (None when no object moves in it) and its number of objects."""
    scores = result["davis"]["instances"]
    if not scores.objects:
        return None, 0
    return float(summarise([scores]).jf_mean), len(scores.objects)


def score_streams(sequences: Sequence[VideoSequence], configs: dict[str, PipelineConfig],
                  id_switches: bool = True) -> list[StreamScore]:
    """Each pipeline over every sequence as a stream, scored on every frame (all are annotated)."""
    if not sequences:
        raise ValueError("no clips to score")
    protocol = EvalProtocol(metrics=("davis", "mots") if id_switches else ("davis",))
    out = []
    for name, config in configs.items():
        pipeline = Pipeline(config)
        warmup = warm_up(pipeline, sequences[0])
        results, seconds = [], 0.0
        for seq in tqdm(sequences, desc=f"clips {name}", unit="clip", file=sys.stderr, disable=None, leave=False):
            run = run_stream(pipeline, seq, name)
            results.append(score_sequence(seq, run.labels, protocol))
            seconds += run.seconds
        overall = combine(results)  # also scores the id switches (pops each result's mots input)
        try:
            instances = summarise([r["davis"]["instances"] for r in results])
            inst = (instances.jf_mean, instances.j.mean, instances.f.mean)
        except MetricInputError:  # no clip has a moving object
            inst = (None, None, None)
        clips = []
        for seq, r in zip(sequences, results):
            jf, objects = _instances(r)
            clips.append({"sequence": seq.name, "frames": len(seq), "objects": objects, "instance_jf": jf,
                          "binary_j": float(r["davis"]["binary"].j_stats.mean),
                          "id_switches": int(r["mots"]["IDS"]) if "mots" in r else None})
        ids = int(overall["mots"]["IDS"]) if "mots" in overall else None
        out.append(StreamScore(name, pipeline_settings(config), *(None if v is None else float(v) for v in inst),
                               float(overall["davis_binary"]["J-Mean"]), ids, clips,
                               sum(len(s) for s in sequences), seconds, warmup))
    return out
