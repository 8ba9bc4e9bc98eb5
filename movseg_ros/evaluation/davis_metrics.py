"""DAVIS region similarity J and boundary accuracy F, their statistics, and the binary and instance protocols.

Definitions follow the official DAVIS evaluation (davis2017-evaluation: db_eval_iou, f_measure/_seg2bmap,
db_statistics, _evaluate_unsupervised) so that figures agree with it to rounding; the code is written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
import math
from typing import Iterable, Sequence
import warnings

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage.morphology import disk

from movseg_ros.evaluation.errors import MetricInputError

BOUND_TH = 0.008
"""DAVIS boundary tolerance: a fraction of the image diagonal (or, when >= 1, a radius in pixels)."""

MAX_PREDICTIONS = 20
"""The DAVIS-2017 unsupervised task refuses result files with a label above this."""


# --- input checks -------------------------------------------------------------------------------


def _as_mask(a: np.ndarray, what: str) -> np.ndarray:
    """A 2-D array read as a boolean mask (any non-zero value is foreground)."""
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise MetricInputError(f"{what}: expected a 2-D mask, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.number)):
        raise MetricInputError(f"{what}: expected a numeric or boolean mask, got dtype {arr.dtype}")
    return arr != 0


def _as_labels(a: np.ndarray, what: str) -> np.ndarray:
    """A 2-D label map of non-negative integers (0 = background), as int64."""
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise MetricInputError(f"{what}: expected a 2-D label map, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise MetricInputError(f"{what}: expected an integer label map, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise MetricInputError(f"{what}: negative label {arr.min()}")
    return arr.astype(np.int64, copy=False)


def _check_same_shape(pred: np.ndarray, truth: np.ndarray, void: np.ndarray | None, where: str = "") -> None:
    if pred.shape != truth.shape:
        raise MetricInputError(f"{where}prediction {pred.shape} and truth {truth.shape} differ in size")
    if void is not None and void.shape != truth.shape:
        raise MetricInputError(f"{where}void mask {void.shape} and truth {truth.shape} differ in size")


def _check_bound_th(bound_th: float) -> None:
    if not (bound_th > 0) or (bound_th >= 1 and float(bound_th) != int(bound_th)):
        raise MetricInputError(f"bound_th must be a fraction in (0, 1) or a whole radius >= 1, got {bound_th}")


# --- J ------------------------------------------------------------------------------------------


def _without_void(pred: np.ndarray, truth: np.ndarray, void: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and truth as boolean masks of one shape, with void pixels cleared in both."""
    p = _as_mask(pred, "prediction")
    t = _as_mask(truth, "truth")
    v = None if void is None else _as_mask(void, "void mask")
    _check_same_shape(p, t, v)
    if v is not None:
        p, t = p & ~v, t & ~v
    return p, t


def jaccard(pred: np.ndarray, truth: np.ndarray, void: np.ndarray | None = None) -> float:
    """Region IoU of two masks (non-zero = foreground), void pixels left out; empty on empty scores 1."""
    p, t = _without_void(pred, truth, void)
    union = np.logical_or(p, t).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(p, t).sum() / union)


# --- F ------------------------------------------------------------------------------------------


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a mask as DAVIS (seg2bmap) defines them: a pixel differing from its right,
    lower or lower-right neighbour; last row compares right only, last column down only, corner never."""
    seg = _as_mask(mask, "mask")
    right = np.zeros_like(seg)
    down = np.zeros_like(seg)
    diag = np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    down[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    b[-1, :] = seg[-1, :] ^ right[-1, :]
    b[:, -1] = seg[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def tolerance_pixels(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Boundary match radius: ceil(bound_th * image diagonal) for a fraction, bound_th itself when >= 1."""
    _check_bound_th(bound_th)
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * float(np.linalg.norm(shape))))


@lru_cache(maxsize=16)
def _disk(radius: int) -> np.ndarray:
    return disk(radius).astype(np.uint8)


@dataclass(frozen=True)
class _Boundary:
    """One mask's boundary pixels (flat indices) and its boundary dilated by the tolerance disk."""

    pixels: np.ndarray
    dilated: np.ndarray | None  # flat bool; None when there is no boundary

    @property
    def count(self) -> int:
        return int(self.pixels.size)


_NO_BOUNDARY = _Boundary(np.empty(0, np.int64), None)


def _boundary(mask: np.ndarray, radius: int) -> _Boundary:
    b = boundary_map(mask)
    pixels = np.flatnonzero(b)
    if pixels.size == 0:
        return _Boundary(pixels, None)
    dilated = cv2.dilate(b.astype(np.uint8), _disk(radius)).astype(bool).ravel()
    return _Boundary(pixels, dilated)


def _boundary_f(pred: _Boundary, truth: _Boundary) -> float:
    """F of two boundaries with the official edge cases (no boundary on either side)."""
    n_fg, n_gt = pred.count, truth.count
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = np.sum(truth.dilated[pred.pixels]) / float(n_fg)
        recall = np.sum(pred.dilated[truth.pixels]) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def boundary_f(pred: np.ndarray, truth: np.ndarray, bound_th: float = BOUND_TH,
               void: np.ndarray | None = None) -> float:
    """DAVIS boundary F-measure: boundary precision/recall within a disk of the tolerance, void left out."""
    p, t = _without_void(pred, truth, void)
    radius = tolerance_pixels(p.shape, bound_th)
    return _boundary_f(_boundary(p, radius), _boundary(t, radius))


# --- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    """Mean (NaN ignored), Recall (fraction of frames over 0.5) and Decay (first quarter minus last)."""

    mean: float
    recall: float
    decay: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "recall": self.recall, "decay": self.decay}


def decay_bins(n: int) -> list[tuple[int, int]]:
    """The 4 inclusive (first, last) frame-index bins of the official Decay; neighbouring bins share an end."""
    if n < 1:
        raise MetricInputError(f"decay needs at least one frame, got {n}")
    ids = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(int)
    return [(int(ids[i]), int(ids[i + 1])) for i in range(4)]


def statistics(per_frame: np.ndarray) -> Statistics:
    """Mean, Recall and Decay of a per-frame series, as the official db_statistics forms them.

    Recall counts frames strictly over 0.5 (official davis2017-evaluation; trackeval adds an epsilon, which
    differs only on a value of exactly 0.5) and a NaN frame counts as not recalled. Bins use integer indices
    (the official uint8 cast wraps past 256 frames; for n <= 256 they agree).
    """
    v = np.asarray(per_frame, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise MetricInputError(f"per-frame values must be a non-empty 1-D series, got shape {v.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(v))
        recall = float(np.mean(v > 0.5))
        (a0, a1), _, _, (d0, d1) = decay_bins(v.size)
        decay = float(np.nanmean(v[a0:a1 + 1]) - np.nanmean(v[d0:d1 + 1]))
    return Statistics(mean, recall, decay)


# --- sequences ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceScores:
    """Per-frame J and F of one object (the foreground, in the binary task) and their statistics."""

    j: np.ndarray
    f: np.ndarray
    frames: tuple[int, ...]
    j_stats: Statistics = field(init=False)
    f_stats: Statistics = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "j_stats", statistics(self.j))
        object.__setattr__(self, "f_stats", statistics(self.f))

    @property
    def jf(self) -> float:
        """J&F: the mean of J-Mean and F-Mean."""
        return (self.j_stats.mean + self.f_stats.mean) / 2

    def as_dict(self) -> dict:
        return {"J&F": self.jf, "J": self.j_stats.as_dict(), "F": self.f_stats.as_dict(),
                "frames": list(self.frames), "J_per_frame": self.j.tolist(), "F_per_frame": self.f.tolist()}


@dataclass(frozen=True)
class InstanceScores:
    """DAVIS-2017 unsupervised scores of one sequence: each truth object's scores and its matched prediction."""

    objects: dict[int, SequenceScores]
    matches: dict[int, int | None]
    """truth id -> predicted id; None where the object was matched to an empty (padding) proposal."""

    def as_dict(self) -> dict:
        return {"objects": {str(k): v.as_dict() for k, v in self.objects.items()},
                "matches": {str(k): v for k, v in self.matches.items()}}


def semi_supervised_frames(n: int) -> list[int]:
    """Frames scored in the semi-supervised task: all but the first (given) and the last."""
    return list(range(1, n - 1))


def _check_sequence(preds: Sequence, truths: Sequence, void: Sequence | None,
                    frames: Sequence[int] | None) -> list[int]:
    if len(preds) != len(truths):
        raise MetricInputError(f"{len(preds)} predicted frames but {len(truths)} truth frames")
    if len(truths) == 0:
        raise MetricInputError("the sequence has no frames")
    if void is not None and len(void) != len(truths):
        raise MetricInputError(f"{len(void)} void masks but {len(truths)} truth frames")
    chosen = list(range(len(truths))) if frames is None else [int(i) for i in frames]
    if not chosen:
        raise MetricInputError("no frames selected to score")
    bad = [i for i in chosen if not 0 <= i < len(truths)]
    if bad:
        raise MetricInputError(f"frame indices {bad[:5]} outside the sequence of {len(truths)} frames")
    return chosen


def _pair_scores(pred: np.ndarray, truth: np.ndarray, n_pred: int, n_truth: int,
                 void: np.ndarray | None, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every (proposal 1..n_pred, truth object 1..n_truth) pair on one frame, each (n_pred, n_truth)."""
    if void is not None:
        pred = np.where(void, 0, pred)
        truth = np.where(void, 0, truth)
    width = n_pred + 1
    counts = np.bincount((truth * width + pred).ravel(), minlength=(n_truth + 1) * width)
    counts = counts.reshape(n_truth + 1, width)
    inter = counts[1:, 1:].T.astype(np.int64)  # (n_pred, n_truth)
    area_p = counts[:, 1:].sum(axis=0)[:, None]
    area_t = counts[1:, :].sum(axis=1)[None, :]
    union = area_p + area_t - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    j[np.isclose(union, 0)] = 1

    # boundaries only of the ids present (KITTI-MOTS ids run to 2000 and more, nearly all absent): a pair with
    # no boundary on either side scores 1, a pair with one on one side only 0, as _boundary_f has it
    pred_b = [_boundary(pred == k, radius) if area_p[k - 1, 0] else _NO_BOUNDARY for k in range(1, n_pred + 1)]
    truth_b = [_boundary(truth == k, radius) if area_t[0, k - 1] else _NO_BOUNDARY for k in range(1, n_truth + 1)]
    has_p = np.array([b.count > 0 for b in pred_b], bool)
    has_t = np.array([b.count > 0 for b in truth_b], bool)
    f = (~has_p[:, None] & ~has_t[None, :]).astype(float)
    for a in np.flatnonzero(has_p):
        for b in np.flatnonzero(has_t):
            f[a, b] = _boundary_f(pred_b[a], truth_b[b])
    return j, f


def score_binary_sequence(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                          frames: Sequence[int] | None = None, void: Sequence[np.ndarray] | None = None,
                          bound_th: float = BOUND_TH) -> SequenceScores:
    """J and F of every chosen frame (default all: the unsupervised task) of a binary sequence."""
    chosen = _check_sequence(preds, truths, void, frames)
    _check_bound_th(bound_th)
    j = np.zeros(len(chosen))
    f = np.zeros(len(chosen))
    for n, i in enumerate(chosen):
        p = _as_mask(preds[i], f"prediction frame {i}").astype(np.int64)
        t = _as_mask(truths[i], f"truth frame {i}").astype(np.int64)
        v = None if void is None else _as_mask(void[i], f"void mask frame {i}")
        _check_same_shape(p, t, v, f"frame {i}: ")
        jj, ff = _pair_scores(p, t, 1, 1, v, tolerance_pixels(t.shape, bound_th))
        j[n], f[n] = jj[0, 0], ff[0, 0]
    return SequenceScores(j, f, tuple(chosen))


def score_instance_sequence(pred_labels: Sequence[np.ndarray], truth_labels: Sequence[np.ndarray],
                            max_predictions: int | None = MAX_PREDICTIONS, frames: Sequence[int] | None = None,
                            void: Sequence[np.ndarray] | None = None,
                            bound_th: float = BOUND_TH) -> InstanceScores:
    """DAVIS-2017 unsupervised protocol on label maps (0 = background).

    As the official code reads PNGs: truth objects are ids 1..max truth label, proposals ids 1..max predicted
    label on the scored frames (an absent id is an empty proposal), padded with empty proposals up to the
    number of objects. Every (proposal, object) pair is scored on every frame; the Hungarian algorithm
    matches proposals to objects maximising (mean J + mean F) / 2. An object left to an empty proposal
    scores 0 where it is visible and 1 where it is absent (both empty), as officially. A label above
    `max_predictions` is refused, as the official code refuses it (None: no limit).
    """
    chosen = _check_sequence(pred_labels, truth_labels, void, frames)
    _check_bound_th(bound_th)
    truths = [_as_labels(t, f"truth frame {i}") for i, t in enumerate(truth_labels)]
    preds = {i: _as_labels(pred_labels[i], f"prediction frame {i}") for i in chosen}
    voids = {i: _as_mask(void[i], f"void mask frame {i}") for i in chosen} if void is not None else {}
    for i in chosen:
        _check_same_shape(preds[i], truths[i], voids.get(i), f"frame {i}: ")
    n_truth = max(int(t.max()) if t.size else 0 for t in truths)
    n_pred = max(int(preds[i].max()) if preds[i].size else 0 for i in chosen)
    if max_predictions is not None and n_pred > max_predictions:
        raise MetricInputError(
            f"predicted label {n_pred} exceeds the {max_predictions} proposals the DAVIS unsupervised task "
            f"allows (relabel tracks to 1..K)")
    if n_truth == 0:
        return InstanceScores({}, {})
    n_prop = max(n_pred, n_truth)
    j = np.zeros((n_prop, n_truth, len(chosen)))
    f = np.zeros_like(j)
    for n, i in enumerate(chosen):
        radius = tolerance_pixels(truths[i].shape, bound_th)
        j[:, :, n], f[:, :, n] = _pair_scores(preds[i], truths[i], n_prop, n_truth, voids.get(i), radius)
    all_metrics = (np.mean(j, axis=2) + np.mean(f, axis=2)) / 2
    rows, cols = linear_sum_assignment(-all_metrics)
    objects: dict[int, SequenceScores] = {}
    matches: dict[int, int | None] = {}
    for r, c in sorted(zip(rows, cols), key=lambda rc: rc[1]):
        objects[int(c) + 1] = SequenceScores(j[r, c].copy(), f[r, c].copy(), tuple(chosen))
        matches[int(c) + 1] = int(r) + 1 if r < n_pred else None
    return InstanceScores(objects, matches)


# --- summary ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DavisSummary:
    """The overall DAVIS table: means over objects (binary: one object per sequence)."""

    jf_mean: float
    j: Statistics
    f: Statistics
    n_objects: int

    def as_dict(self) -> dict[str, float | int]:
        return {"J&F-Mean": self.jf_mean, "J-Mean": self.j.mean, "J-Recall": self.j.recall,
                "J-Decay": self.j.decay, "F-Mean": self.f.mean, "F-Recall": self.f.recall,
                "F-Decay": self.f.decay, "objects": self.n_objects}

    def table(self) -> str:
        """Two lines: the header and the figures, as the official tool prints them."""
        d = self.as_dict()
        keys = [k for k in d if k != "objects"]
        return " ".join(f"{k:>9}" for k in keys) + "\n" + " ".join(f"{d[k]:9.3f}" for k in keys)


def summarise(scores: Iterable[SequenceScores | InstanceScores]) -> DavisSummary:
    """Overall J&F, J and F statistics: each the mean over all objects of all sequences (official)."""
    objects: list[SequenceScores] = []
    for s in scores:
        if isinstance(s, InstanceScores):
            objects.extend(s.objects.values())
        elif isinstance(s, SequenceScores):
            objects.append(s)
        else:
            raise MetricInputError(f"cannot summarise a {type(s).__name__}")
    if not objects:
        raise MetricInputError("nothing to summarise: no scored objects")
    j = Statistics(*(float(np.mean([getattr(o.j_stats, k) for o in objects])) for k in ("mean", "recall", "decay")))
    f = Statistics(*(float(np.mean([getattr(o.f_stats, k) for o in objects])) for k in ("mean", "recall", "decay")))
    return DavisSummary((j.mean + f.mean) / 2, j, f, len(objects))
