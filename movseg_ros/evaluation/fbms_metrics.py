"""FBMS video instance measures: the official one (Ochs, Malik, Brox, PAMI 2014), the one proposed in seed 000
§4 that also penalises unmatched predictions, and ΔObj (Bideau et al.).

All work on label maps of the annotated frames only (0 = background in both truth and prediction), pixels
pooled over those frames per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from movseg_ros.evaluation.errors import MetricInputError

OBJECT_THRESHOLD = 0.75
"""An object counts as extracted when its matched F exceeds this (the FBMS default for reporting)."""


def _stack(pred_labels: Sequence[np.ndarray], truth_labels: Sequence[np.ndarray],
           void: Sequence[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Flattened label vectors over all annotated frames, after checking types and sizes."""
    if len(pred_labels) != len(truth_labels):
        raise MetricInputError(f"{len(pred_labels)} predicted frames but {len(truth_labels)} annotated frames")
    if not truth_labels:
        raise MetricInputError("the sequence has no annotated frames")
    if void is not None and len(void) != len(truth_labels):
        raise MetricInputError(f"{len(void)} unlabeled-pixel masks but {len(truth_labels)} annotated frames")
    preds, truths, voids = [], [], []
    for i, (p, t) in enumerate(zip(pred_labels, truth_labels)):
        p, t = np.asarray(p), np.asarray(t)
        for a, what in ((p, "prediction"), (t, "truth")):
            if a.ndim != 2:
                raise MetricInputError(f"{what} frame {i}: expected a 2-D label map, got shape {a.shape}")
            if not (a.dtype == bool or np.issubdtype(a.dtype, np.integer)):
                raise MetricInputError(f"{what} frame {i}: expected an integer label map, got dtype {a.dtype}")
            if a.size and a.min() < 0:
                raise MetricInputError(f"{what} frame {i}: negative label {a.min()}")
        if p.shape != t.shape:
            raise MetricInputError(f"frame {i}: prediction {p.shape} and truth {t.shape} differ in size")
        preds.append(p.astype(np.int64).ravel())
        truths.append(t.astype(np.int64).ravel())
        if void is not None:
            v = np.asarray(void[i])
            if v.shape != t.shape:
                raise MetricInputError(f"frame {i}: unlabeled-pixel mask {v.shape} and truth {t.shape} differ in size")
            voids.append(v.astype(bool).ravel())
    return np.concatenate(preds), np.concatenate(truths), (np.concatenate(voids) if void is not None else None)


def _overlaps(pred: np.ndarray, truth: np.ndarray, weight: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct predicted labels, distinct truth labels, and the (truth x prediction) weighted overlap counts."""
    p_ids, p_idx = np.unique(pred, return_inverse=True)
    t_ids, t_idx = np.unique(truth, return_inverse=True)
    counts = np.bincount(t_idx * p_ids.size + p_idx, weights=weight, minlength=t_ids.size * p_ids.size)
    return p_ids, t_ids, counts.reshape(t_ids.size, p_ids.size)


def _f_measure(p: np.ndarray | float, r: np.ndarray | float) -> np.ndarray:
    p, r = np.asarray(p, float), np.asarray(r, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p + r > 0, 2 * p * r / (p + r), 0.0)


# --- official ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FbmsOfficialScores:
    """One sequence under the official measure: averaged P/R over truth regions, their F, objects found."""

    precision: float
    recall: float
    f: float
    n_extracted: int
    n_visible: int
    matches: dict[int, int | None]
    """truth region -> predicted label (None: more regions than predicted labels, left unmatched)."""
    region_scores: dict[int, tuple[float, float, float]]
    """truth region -> (P, R, F) of its match."""

    def as_dict(self) -> dict:
        return {"P": self.precision, "R": self.recall, "F": self.f, "N": self.n_extracted,
                "visible_objects": self.n_visible, "matches": {str(k): v for k, v in self.matches.items()},
                "regions": {str(k): list(v) for k, v in self.region_scores.items()}}


def fbms_official_sequence(pred_labels: Sequence[np.ndarray], truth_labels: Sequence[np.ndarray],
                           void: Sequence[np.ndarray] | None = None, threshold: float = OBJECT_THRESHOLD,
                           include_background: bool = True) -> FbmsOfficialScores:
    """The FBMS-59 measure of one sequence, as the benchmark's MoSegEvalPR computes it on dense labels.

    Truth regions are the labels visible on the annotated frames, the background (0) included; clusters are
    the predicted labels, the predicted background (0) included. Unlabeled (void) pixels weigh nothing.
    P_ij = |c_i ∩ g_j| / |c_i|, R_ij = |c_i ∩ g_j| / |g_j|, F_ij their harmonic mean; clusters are assigned
    to regions by the Hungarian algorithm maximising ΣF; unmatched clusters are ignored; a region left
    without a cluster (more regions than clusters) counts P = 1, R = 0. P and R are averaged over the
    regions, F = 2PR/(P+R) of those averages. N = regions whose F > threshold, minus one for the
    background (as the official code subtracts it), at least 0. `include_background=False` leaves both
    backgrounds out (object regions matched to predicted objects only), averages over object regions and
    counts N over them: the reading in seed 000's Figure 4, not the benchmark's code.
    """
    pred, truth, void_px = _stack(pred_labels, truth_labels, void)
    weight = None if void_px is None else (~void_px).astype(float)
    p_ids, t_ids, overlap = _overlaps(pred, truth, weight)
    cluster_size = overlap.sum(axis=0)  # every pixel of a cluster, whatever region it lies in
    region_size = overlap.sum(axis=1)
    keep = region_size >= 1e-4  # visible on the annotated frames
    if not include_background:  # neither the true nor the predicted background takes part
        keep &= t_ids != 0
        clusters = p_ids != 0
        p_ids, overlap, cluster_size = p_ids[clusters], overlap[:, clusters], cluster_size[clusters]
    t_ids, overlap, region_size = t_ids[keep], overlap[keep], region_size[keep]
    if t_ids.size == 0:
        raise MetricInputError("no visible truth region on the annotated frames")
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(cluster_size[None, :] > 0, overlap / cluster_size[None, :], 0.0)
        rec = np.where(region_size[:, None] > 0, overlap / region_size[:, None], 0.0)
    f = _f_measure(prec, rec)
    rows, cols = linear_sum_assignment(-f) if f.size else (np.array([], int), np.array([], int))
    matched = dict(zip(rows.tolist(), cols.tolist()))
    matches: dict[int, int | None] = {}
    scores: dict[int, tuple[float, float, float]] = {}
    for r, region in enumerate(t_ids.tolist()):
        if r in matched:
            c = matched[r]
            matches[region] = int(p_ids[c])
            scores[region] = (float(prec[r, c]), float(rec[r, c]), float(f[r, c]))
        else:
            matches[region] = None
            scores[region] = (1.0, 0.0, 0.0)
    n_regions = len(scores)
    precision = float(np.mean([s[0] for s in scores.values()]))
    recall = float(np.mean([s[1] for s in scores.values()]))
    over = sum(1 for s in scores.values() if s[2] > threshold)
    if include_background:
        n_extracted, n_visible = max(0, over - 1), max(0, n_regions - 1)
    else:
        n_extracted, n_visible = over, n_regions
    return FbmsOfficialScores(precision, recall, float(_f_measure(precision, recall)), n_extracted, n_visible,
                              matches, scores)


@dataclass(frozen=True)
class FbmsSummary:
    """Over sequences: P, R, F (and, for the official measure, N out of the visible objects)."""

    precision: float
    recall: float
    f: float
    n_extracted: int | None = None
    n_visible: int | None = None
    sequences: int = 0

    def as_dict(self) -> dict:
        d = {"P": self.precision, "R": self.recall, "F": self.f, "sequences": self.sequences}
        if self.n_extracted is not None:
            d.update({"N": self.n_extracted, "visible_objects": self.n_visible})
        return d


def summarise_official(scores: Iterable[FbmsOfficialScores]) -> FbmsSummary:
    """Official overall figures (MoSegEvalAllPR): P and R averaged over sequences, F of those, N summed."""
    s = list(scores)
    if not s:
        raise MetricInputError("nothing to summarise: no sequences")
    p = float(np.mean([x.precision for x in s]))
    r = float(np.mean([x.recall for x in s]))
    return FbmsSummary(p, r, float(_f_measure(p, r)), sum(x.n_extracted for x in s),
                       sum(x.n_visible for x in s), len(s))


# --- proposed (seed 000 §4) -------------------------------------------------------------------


@dataclass(frozen=True)
class FbmsProposedScores:
    """One sequence under the proposed measure: pooled P, R and their F; truth object -> matched prediction."""

    precision: float
    recall: float
    f: float
    matches: dict[int, int]

    def as_dict(self) -> dict:
        return {"P": self.precision, "R": self.recall, "F": self.f,
                "matches": {str(k): v for k, v in self.matches.items()}}


def fbms_proposed_sequence(pred_labels: Sequence[np.ndarray], truth_labels: Sequence[np.ndarray]
                           ) -> FbmsProposedScores:
    """The measure of seed 000 §4 ("Towards segmenting anything that moves"), which penalises false positives.

    The paper: "For each video, let c_i be the pixels belonging to a predicted region i, and g_j be all the
    pixels belonging to a groundtruth non-background region j. While [29] omits unlabeled pixels from
    evaluation, we include all pixels in the groundtruth." P_ij, R_ij, F_ij as in the official measure;
    "we use the Hungarian algorithm to find a matching between predictions and groundtruth that maximizes
    the sum of the F-measure over all assignments. Let g(c_i) be the groundtruth matched to each predicted
    region; for any c_i that is not matched to a groundtruth cluster, g(c_i) is set to an empty region."
    P = Σ_i |c_i ∩ g(c_i)| / Σ_i |c_i|, R = Σ_i |c_i ∩ g(c_i)| / Σ_j |g_j|, F = 2PR/(P+R) (the printed
    denominators' index typos read as here). So every unmatched prediction's pixels count against P.
    With no predicted (or no true) pixels, P (or R) is 0, as in the authors' released evaluation.
    """
    pred, truth, _ = _stack(pred_labels, truth_labels, None)
    p_ids, t_ids, overlap = _overlaps(pred, truth)
    pred_size = overlap.sum(axis=0)[p_ids != 0]
    truth_size = overlap.sum(axis=1)[t_ids != 0]
    inter = overlap[np.ix_(t_ids != 0, p_ids != 0)]
    p_obj, t_obj = p_ids[p_ids != 0], t_ids[t_ids != 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = _f_measure(inter / pred_size[None, :], inter / truth_size[:, None]) if inter.size else inter
    rows, cols = linear_sum_assignment(-f) if f.size else (np.array([], int), np.array([], int))
    correct = float(inter[rows, cols].sum()) if rows.size else 0.0
    total_pred, total_truth = float(pred_size.sum()), float(truth_size.sum())
    precision = correct / total_pred if total_pred > 0 else 0.0
    recall = correct / total_truth if total_truth > 0 else 0.0
    matches = {int(t_obj[r]): int(p_obj[c]) for r, c in zip(rows, cols)}
    return FbmsProposedScores(precision, recall, float(_f_measure(precision, recall)), matches)


def summarise_proposed(scores: Iterable[FbmsProposedScores]) -> FbmsSummary:
    """P, R and F each averaged over sequences (the paper's tables; its F is not the F of the mean P, R)."""
    s = list(scores)
    if not s:
        raise MetricInputError("nothing to summarise: no sequences")
    return FbmsSummary(float(np.mean([x.precision for x in s])), float(np.mean([x.recall for x in s])),
                       float(np.mean([x.f for x in s])), sequences=len(s))


# --- ΔObj -------------------------------------------------------------------------------------


def count_objects(labels: Sequence[np.ndarray]) -> int:
    """Distinct non-background labels over a sequence's frames."""
    ids: set[int] = set()
    for lab in labels:
        ids.update(int(k) for k in np.unique(np.asarray(lab)) if k != 0)
    return len(ids)


def delta_obj(pred_counts: Sequence[int], truth_counts: Sequence[int]) -> float:
    """ΔObj: the mean over sequences of |predicted objects - true objects| (lower is better)."""
    if len(pred_counts) != len(truth_counts):
        raise MetricInputError(f"{len(pred_counts)} predicted counts but {len(truth_counts)} true counts")
    if not truth_counts:
        raise MetricInputError("ΔObj needs at least one sequence")
    if any(c < 0 for c in list(pred_counts) + list(truth_counts)):
        raise MetricInputError("object counts cannot be negative")
    return float(np.mean(np.abs(np.asarray(pred_counts, float) - np.asarray(truth_counts, float))))
