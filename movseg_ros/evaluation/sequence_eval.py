"""Score one sequence's predicted label maps against its truth with every metric that applies.

The benchmarks' protocols: DAVIS binary (union of predictions vs union of objects) and DAVIS-2017
unsupervised instances on the annotated frames; FBMS official and proposed measures and object
counts for FBMS; sMOTSA/HOTA (combined over sequences, in `score_dataset`) for MOTS data.
A frame with truth but no prediction is an error unless partial results are allowed; then
only the present frames are scored and the result says `partial` and which frames were missing.
Likewise a frame whose image, prediction or annotation file is unreadable (BadImageFile): with
partial results allowed it is left out and listed under `skipped_frames` with the file and problem.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from movseg_ros.datasets.errors import BadImageFile, read_or_skip
from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.evaluation.davis_metrics import score_binary_sequence, score_instance_sequence, summarise
from movseg_ros.evaluation.errors import MetricInputError
from movseg_ros.evaluation.fbms_metrics import (
    count_objects, delta_obj, fbms_official_sequence, fbms_proposed_sequence, summarise_official, summarise_proposed,
)
from movseg_ros.evaluation.relabel import relabel_tracks

METRIC_SETS = ("davis", "fbms", "mots")
DEFAULT_METRICS = {"davis2016": ("davis",), "davis2017": ("davis",), "davis": ("davis",), "fbms": ("davis", "fbms"),
                   "kitti_mots": ("davis", "mots"), "motschallenge": ("davis", "mots"), "ytvos": ("davis",)}


@dataclass(frozen=True)
class EvalProtocol:
    """Which frames and metrics count: `frames` "all" (unsupervised) or "inner" (drop the first and last)."""

    metrics: tuple[str, ...] | None = None  # None: by data set (DEFAULT_METRICS)
    frames: str = "all"
    allow_partial: bool = False

    def __post_init__(self) -> None:
        if self.frames not in ("all", "inner"):
            raise ValueError(f"frames must be 'all' or 'inner', got {self.frames!r}")
        unknown = set(self.metrics or ()) - set(METRIC_SETS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRIC_SETS}")

    def metrics_for(self, dataset: str) -> tuple[str, ...]:
        return self.metrics or DEFAULT_METRICS.get(dataset, ("davis",))


def scored_frames(seq: VideoSequence, predictions: Sequence[np.ndarray | None], protocol: EvalProtocol,
                  skipped: Collection[int] = ()) -> tuple[list[int], list[int]]:
    """(frames to score, annotated frames without a prediction) under the protocol; `skipped` frames
    (an unreadable file) have none either but are not counted missing."""
    if len(predictions) != len(seq):
        raise MetricInputError(f"{seq.name}: {len(predictions)} predicted frames for a sequence of {len(seq)}")
    annotated = list(seq.annotated)
    if protocol.frames == "inner":
        annotated = annotated[1:-1]
    missing = [i for i in annotated if predictions[i] is None and i not in skipped]
    if missing and not protocol.allow_partial:
        names = [seq.frame_names[i] for i in missing[:10]]
        raise MetricInputError(f"{seq.name}: no prediction for {len(missing)} annotated frame(s), e.g. {names}; "
                               f"allow partial results to score the rest")
    return [i for i in annotated if predictions[i] is not None], missing


def score_sequence(seq: VideoSequence, predictions: Sequence[np.ndarray | None], protocol: EvalProtocol,
                   skipped: Mapping[int, BadImageFile] | None = None) -> dict[str, Any]:
    """Every applicable metric of one sequence; `predictions` has one entry per frame (None: missing, or
    skipped: `skipped` says which frames had an unreadable file, and why). With partial results allowed,
    an unreadable annotation file is skipped too."""
    skipped = dict(skipped or {})
    frames, missing = scored_frames(seq, predictions, protocol, skipped)
    labels = {i: read_or_skip(seq.labels, i, skipped if protocol.allow_partial else None) for i in frames}
    frames = [i for i in frames if labels[i] is not None]
    if not frames:
        raise MetricInputError(f"{seq.name}: no annotated frame has a prediction"
                               + (f" ({len(skipped)} frame(s) skipped as unreadable)" if skipped else ""))
    truths = [labels[i] for i in frames]
    preds = [np.asarray(predictions[i]) for i in frames]
    for i, p, t in zip(frames, preds, truths):
        if p.shape != t.shape:
            raise MetricInputError(f"{seq.name}: prediction of frame {seq.frame_names[i]} is {p.shape[1]}x{p.shape[0]}, "
                                   f"the truth {t.shape[1]}x{t.shape[0]}")
    voids = [seq.ignore(i) for i in frames]
    void = None if all(v is None for v in voids) else [v if v is not None else np.zeros_like(t, bool)
                                                       for v, t in zip(voids, truths)]
    result: dict[str, Any] = {
        "sequence": seq.name, "dataset": seq.dataset, "frames": len(seq), "frames_scored": len(frames),
        "scored_frames": [seq.frame_names[i] for i in frames],
        "partial": bool(missing or skipped), "missing_frames": [seq.frame_names[i] for i in missing],
        "frames_skipped": len(skipped),
        "skipped_frames": [{"frame": seq.frame_names[i], "file": str(e.path), "problem": e.problem}
                           for i, e in sorted(skipped.items())],
    }
    metrics = protocol.metrics_for(seq.dataset)
    if "davis" in metrics:
        binary = score_binary_sequence([p > 0 for p in preds], [t > 0 for t in truths], void=void)
        instances = score_instance_sequence(relabel_tracks(preds), truths, void=void)
        result["davis"] = {"binary": binary, "instances": instances}
    if "fbms" in metrics:
        result["fbms"] = {"official": fbms_official_sequence(preds, truths, void=void),
                          "proposed": fbms_proposed_sequence(preds, truths),
                          "objects_predicted": count_objects(preds), "objects_true": count_objects(truths)}
    if "mots" in metrics:
        ignore = [v if v is not None else np.zeros_like(t, bool) for v, t in zip(voids, truths)]
        result["mots_input"] = (truths, preds, ignore)
    return result


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall figures over the sequences (each benchmark's own way of combining)."""
    overall: dict[str, Any] = {"sequences": len(results), "partial": any(r["partial"] for r in results),
                               "frames_skipped": sum(r["frames_skipped"] for r in results)}
    davis = [r["davis"] for r in results if "davis" in r]
    if davis:
        overall["davis_binary"] = summarise([d["binary"] for d in davis]).as_dict()
        overall["davis_instances"] = summarise([d["instances"] for d in davis]).as_dict()
    fbms = [r["fbms"] for r in results if "fbms" in r]
    if fbms:
        overall["fbms_official"] = summarise_official([f["official"] for f in fbms]).as_dict()
        overall["fbms_proposed"] = summarise_proposed([f["proposed"] for f in fbms]).as_dict()
        overall["delta_obj"] = delta_obj([f["objects_predicted"] for f in fbms], [f["objects_true"] for f in fbms])
    mots = {r["sequence"]: r.pop("mots_input") for r in results if "mots_input" in r}
    if mots:
        from movseg_ros.evaluation.mots_metrics import score_mots

        scores = score_mots(mots)
        overall["mots"] = scores["combined"]
        for r in results:
            if r["sequence"] in scores["sequences"]:
                r["mots"] = scores["sequences"][r["sequence"]]
    return overall


def jsonable(result: dict[str, Any]) -> dict[str, Any]:
    """A sequence result with its score objects as plain dicts."""
    out = {k: v for k, v in result.items() if k not in ("davis", "fbms", "mots_input")}
    if "davis" in result:
        b = result["davis"]["binary"].as_dict()
        out["davis"] = {"J": b["J"], "F": b["F"], "J&F": b["J&F"], "J_per_frame": b["J_per_frame"],
                        "F_per_frame": b["F_per_frame"],
                        "instances": {**summarise([result["davis"]["instances"]]).as_dict(),
                                      "matches": result["davis"]["instances"].as_dict()["matches"]}}
    if "fbms" in result:
        f = result["fbms"]
        out["fbms"] = {"official": f["official"].as_dict(), "proposed": f["proposed"].as_dict(),
                       "objects_predicted": f["objects_predicted"], "objects_true": f["objects_true"]}
    return out
