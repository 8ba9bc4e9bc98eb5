"""Multi-object tracking and segmentation scores (sMOTSA, MOTSA, MOTSP, IDS, HOTA, DetA, AssA, IDF1).

The metrics are trackeval's own classes (CLEAR, HOTA, Identity) fed the per-sequence data they expect; this
module only builds that data from label maps: masks run-length encoded and compared with pycocotools, ids
made contiguous, and KITTI-MOTS ignore regions applied as trackeval's KittiMOTS dataset applies them.
"""

from __future__ import annotations

from typing import Mapping, Sequence
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment

from movseg_ros.evaluation.errors import MetricInputError

KITTI_CLASSES = {"car": 1, "pedestrian": 2}
"""KITTI-MOTS class ids: an object's value in the instance PNG is class_id * 1000 + instance number."""
KITTI_IGNORE_VALUE = 10000
"""KITTI-MOTS marks ignore regions (class 10) with this value."""

_EPS = np.finfo("float").eps
_QUIET = "__array__ implementation"  # pycocotools' numpy-2 deprecation notice on decode; harmless


# --- run-length encoding ----------------------------------------------------------------------


def encode_rle(mask: np.ndarray) -> dict:
    """COCO run-length encoding of a 2-D mask (non-zero = in), as JSON-ready {"size": [h, w], "counts": str}."""
    from pycocotools import mask as mask_utils

    m = np.asarray(mask)
    if m.ndim != 2:
        raise MetricInputError(f"mask to encode: expected 2-D, got shape {m.shape}")
    rle = mask_utils.encode(np.asfortranarray(m != 0, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: Mapping, shape: tuple[int, int]) -> np.ndarray:
    """The boolean mask of a COCO RLE, checked against the expected (h, w) and for corrupt run lengths."""
    from pycocotools import mask as mask_utils

    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise MetricInputError("RLE must be a mapping with 'size' and 'counts'")
    size = tuple(int(v) for v in rle["size"])
    if size != tuple(int(v) for v in shape):
        raise MetricInputError(f"RLE of size {size} where {tuple(shape)} was expected")
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    if not isinstance(counts, (bytes, bytearray)):
        raise MetricInputError(f"RLE counts must be a string, got {type(counts).__name__}")
    from movseg_ros.datasets.mots import rle_run_lengths

    try:
        runs = rle_run_lengths(bytes(counts).decode("ascii"))
    except (ValueError, UnicodeDecodeError) as e:
        raise MetricInputError(f"corrupt RLE counts: {e}") from None
    if any(r < 0 for r in runs) or sum(runs) != size[0] * size[1]:
        raise MetricInputError(f"corrupt RLE counts: runs cover {sum(runs)} pixels, not {size[0] * size[1]}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_QUIET, category=DeprecationWarning)
        return mask_utils.decode({"size": list(size), "counts": bytes(counts)}).astype(bool)


def _mask_ious(a: list[dict], b: list[dict], ioa: bool = False) -> np.ndarray:
    """IoU (len(a), len(b)) of pycocotools RLEs; with ioa, intersection over the area of each `a` mask."""
    from pycocotools import mask as mask_utils

    if not a or not b:
        return np.zeros((len(a), len(b)))
    return np.asarray(mask_utils.iou(a, b, [int(ioa)] * len(b)), dtype=float).reshape(len(a), len(b))


# --- label maps to trackeval data -------------------------------------------------------------


def _labels(a: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise MetricInputError(f"{what}: expected a 2-D label map, got shape {arr.shape}")
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)):
        raise MetricInputError(f"{what}: expected an integer label map, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise MetricInputError(f"{what}: negative label {arr.min()}")
    return arr


def _objects(labels: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    from pycocotools import mask as mask_utils

    ids = np.array([int(k) for k in np.unique(labels) if k != 0], dtype=np.int64)
    rles = [mask_utils.encode(np.asfortranarray(labels == k, dtype=np.uint8)) for k in ids]
    return ids, rles


def _ignored_predictions(similarity: np.ndarray, pred_rles: list[dict], ignore_rle: dict) -> np.ndarray:
    """Indices of predictions that match no truth mask (IoU >= 0.5, Hungarian) and lie more than half
    inside the ignore region: KittiMOTS.get_preprocessed_seq_data removes those."""
    unmatched = np.arange(len(pred_rles))
    if similarity.size:
        scores = similarity.copy()
        scores[scores < 0.5 - _EPS] = -10000
        rows, cols = linear_sum_assignment(-scores)
        cols = cols[scores[rows, cols] > 0 + _EPS]
        unmatched = np.delete(unmatched, cols)
    if unmatched.size == 0:
        return unmatched
    inside = _mask_ious([pred_rles[i] for i in unmatched], [ignore_rle], ioa=True)[:, 0]
    return unmatched[inside > 0.5 + _EPS]


def _contiguous(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    unique = np.unique(np.concatenate(ids_per_frame)) if ids_per_frame else np.array([], np.int64)
    lookup = {int(k): i for i, k in enumerate(unique)}
    return [np.array([lookup[int(k)] for k in ids], dtype=int) for ids in ids_per_frame], len(unique)


def sequence_data(name: str, truth_frames: Sequence[np.ndarray], pred_frames: Sequence[np.ndarray],
                  ignore_frames: Sequence[np.ndarray] | None = None) -> dict:
    """The data dict trackeval's metrics take for one sequence, built from label maps (0 = background)."""
    from pycocotools import mask as mask_utils

    if len(truth_frames) != len(pred_frames):
        raise MetricInputError(f"sequence {name}: {len(pred_frames)} predicted frames but {len(truth_frames)} truth")
    if ignore_frames is not None and len(ignore_frames) != len(truth_frames):
        raise MetricInputError(f"sequence {name}: {len(ignore_frames)} ignore masks but {len(truth_frames)} frames")
    gt_ids, tr_ids, sims = [], [], []
    num_gt_dets = num_tr_dets = 0
    for t, (gt_lab, pr_lab) in enumerate(zip(truth_frames, pred_frames)):
        gt_lab = _labels(gt_lab, f"sequence {name} truth frame {t}")
        pr_lab = _labels(pr_lab, f"sequence {name} prediction frame {t}")
        if gt_lab.shape != pr_lab.shape:
            raise MetricInputError(f"sequence {name} frame {t}: prediction {pr_lab.shape} and truth "
                                   f"{gt_lab.shape} differ in size")
        g_ids, g_rles = _objects(gt_lab)
        p_ids, p_rles = _objects(pr_lab)
        sim = _mask_ious(g_rles, p_rles)
        if ignore_frames is not None and p_ids.size:
            ignore = np.asarray(ignore_frames[t])
            if ignore.shape != gt_lab.shape:
                raise MetricInputError(f"sequence {name} frame {t}: ignore mask {ignore.shape} and truth "
                                       f"{gt_lab.shape} differ in size")
            if ignore.any():
                ignore_rle = mask_utils.encode(np.asfortranarray(ignore != 0, dtype=np.uint8))
                drop = _ignored_predictions(sim, p_rles, ignore_rle)
                p_ids = np.delete(p_ids, drop)
                sim = np.delete(sim, drop, axis=1)
        gt_ids.append(g_ids)
        tr_ids.append(p_ids)
        sims.append(sim)
        num_gt_dets += g_ids.size
        num_tr_dets += p_ids.size
    gt_ids, n_gt = _contiguous(gt_ids)
    tr_ids, n_tr = _contiguous(tr_ids)
    return {"num_timesteps": len(truth_frames), "num_gt_ids": n_gt, "num_tracker_ids": n_tr,
            "num_gt_dets": num_gt_dets, "num_tracker_dets": num_tr_dets, "gt_ids": gt_ids,
            "tracker_ids": tr_ids, "similarity_scores": sims, "seq": name}


def kitti_mots_class(instance_map: np.ndarray, class_id: int) -> tuple[np.ndarray, np.ndarray]:
    """One class of a KITTI-MOTS instance map (class_id * 1000 + n): its label map and the ignore region."""
    lab = np.asarray(instance_map).astype(np.int64)
    if lab.ndim != 2:
        raise MetricInputError(f"KITTI-MOTS instance map: expected 2-D, got shape {lab.shape}")
    ignore = lab == KITTI_IGNORE_VALUE
    return np.where((lab // 1000 == class_id) & ~ignore, lab, 0), ignore


# --- scoring ----------------------------------------------------------------------------------


def _summary(clear: dict, hota: dict, identity: dict) -> dict[str, float | int]:
    return {"sMOTSA": float(clear["sMOTA"]), "MOTSA": float(clear["MOTA"]), "MOTSP": float(clear["MOTP"]),
            "IDS": int(clear["IDSW"]), "TP": int(clear["CLR_TP"]), "FP": int(clear["CLR_FP"]),
            "FN": int(clear["CLR_FN"]), "HOTA": float(np.mean(hota["HOTA"])), "DetA": float(np.mean(hota["DetA"])),
            "AssA": float(np.mean(hota["AssA"])), "LocA": float(np.mean(hota["LocA"])),
            "IDF1": float(identity["IDF1"])}


def score_mots(sequences: Mapping[str, tuple]) -> dict:
    """sMOTSA, MOTSA, MOTSP, IDS, HOTA, DetA, AssA, IDF1 per sequence and combined, through trackeval.

    `sequences` maps a name to (truth_frames, pred_frames) or (truth_frames, pred_frames, ignore_frames):
    per-frame label maps with 0 = background and one id per object kept over time. HOTA, DetA, AssA and
    LocA are the means over trackeval's 19 localisation thresholds, as trackeval reports them.
    Returns {"sequences": {name: figures}, "combined": figures}.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity

    if not sequences:
        raise MetricInputError("no sequences to score")
    metrics = (CLEAR({"PRINT_CONFIG": False}), HOTA(), Identity({"PRINT_CONFIG": False}))
    results: dict[str, tuple[dict, dict, dict]] = {}
    for name, seq in sequences.items():
        if not isinstance(seq, tuple) or len(seq) not in (2, 3):
            raise MetricInputError(f"sequence {name}: expected (truth, prediction[, ignore]) frames")
        data = sequence_data(name, *seq)
        results[name] = tuple(m.eval_sequence(data) for m in metrics)  # type: ignore[assignment]
    combined = [m.combine_sequences({n: r[i] for n, r in results.items()}) for i, m in enumerate(metrics)]
    return {"sequences": {n: _summary(*r) for n, r in results.items()}, "combined": _summary(*combined)}
