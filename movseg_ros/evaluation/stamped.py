"""Score label maps matched to ground truth by header stamp (bags carry no frame numbers).

Used by `movseg replay` (outputs of the pipeline or of the live node) and by `movseg eval` on a
bag in which a user recorded /movseg/instances. Frames with truth but no prediction make the
result partial: they are listed, and scored only if the caller asks for it (as empty masks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movseg_ros.evaluation.davis_metrics import score_binary_sequence, score_instance_sequence, summarise
from movseg_ros.evaluation.relabel import relabel_tracks


class ScoringError(ValueError):
    """Predictions and truth that cannot be compared (sizes differ, nothing in common)."""


@dataclass
class StampedScorer:
    """Collects predictions by stamp against a truth dict {stamp: label map}; scores at the end."""

    truth: dict[int, np.ndarray]
    name: str = "sequence"
    predictions: dict[int, np.ndarray] = field(default_factory=dict)
    duplicates: int = 0
    without_truth: int = 0

    def add(self, stamp_ns: int, label_map: np.ndarray) -> None:
        """One prediction; a stamp seen before is counted and the first kept."""
        if stamp_ns in self.predictions:
            self.duplicates += 1
            return
        truth = self.truth.get(stamp_ns)
        if truth is None:
            self.without_truth += 1
            return
        if truth.shape != label_map.shape:
            raise ScoringError(f"{self.name}: prediction at stamp {stamp_ns} is {label_map.shape[1]}x"
                               f"{label_map.shape[0]} but the truth is {truth.shape[1]}x{truth.shape[0]}")
        self.predictions[stamp_ns] = np.asarray(label_map)

    def result(self, missing_as_empty: bool = False, until_ns: int | None = None) -> dict[str, Any]:
        """DAVIS binary and instance scores over the frames that have both truth and prediction.

        With `missing_as_empty` every truth frame is scored and a missing prediction counts as
        an empty mask (what a user of the live node sees when the node dropped the frame).
        `until_ns` leaves out truth stamped after it (the part of a bag that was not replayed).
        """
        stamps = sorted(s for s in self.truth if until_ns is None or s <= until_ns)
        missing = [s for s in stamps if s not in self.predictions]
        scored = stamps if missing_as_empty else [s for s in stamps if s in self.predictions]
        base: dict[str, Any] = {
            "frames_with_truth": len(stamps), "frames_scored": len(scored), "missing_predictions": len(missing),
            "missing_stamps": missing[:50], "partial": bool(missing) and not missing_as_empty,
            "missing_counted_as_empty": missing_as_empty, "predictions_without_truth": self.without_truth,
            "duplicate_predictions": self.duplicates,
        }
        if not scored:
            return {**base, "binary": None, "instances": None}
        truths = [self.truth[s] for s in scored]
        preds = [self.predictions.get(s, np.zeros_like(self.truth[s])) for s in scored]
        binary = score_binary_sequence([p > 0 for p in preds], [t > 0 for t in truths])
        instances = score_instance_sequence(relabel_tracks(preds), truths)
        return {**base, "stamps": scored, "binary": binary_dict(binary.as_dict()),
                "instances": {**summarise([instances]).as_dict(), "per_object": instances.as_dict()}}


def binary_dict(d: dict[str, Any]) -> dict[str, Any]:
    """SequenceScores.as_dict with the per-frame series next to their statistics."""
    return {"J": {**d["J"], "per_frame": d["J_per_frame"]}, "F": {**d["F"], "per_frame": d["F_per_frame"]},
            "JF": d["J&F"], "frames": d["frames"]}
