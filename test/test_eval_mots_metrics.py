"""MOTS scores through trackeval on tiny sequences worked out by hand, and RLE through pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest

from movseg_ros.evaluation.errors import MetricInputError
from movseg_ros.evaluation.mots_metrics import (
    KITTI_CLASSES, KITTI_IGNORE_VALUE, decode_rle, encode_rle, kitti_mots_class, score_mots, sequence_data)


def frame(*objects: tuple[int, int, int, int, int], shape: tuple[int, int] = (30, 40)) -> np.ndarray:
    """A label map with (id, row, col, height, width) rectangles."""
    lab = np.zeros(shape, np.uint16)
    for k, r, c, h, w in objects:
        lab[r:r + h, c:c + w] = k
    return lab


OBJ = (1, 5, 5, 10, 10)  # 100 px


# --- RLE ----------------------------------------------------------------------------------------


def test_rle_round_trip_and_json() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        m = rng.random((h, w)) < rng.random()
        rle = json.loads(json.dumps(encode_rle(m)))
        assert rle["size"] == [h, w]
        assert np.array_equal(decode_rle(rle, (h, w)), m)


def test_rle_is_column_major_as_coco() -> None:
    # A 2x3 mask with the top-left pixel and the whole last column set, read down columns (Fortran order):
    # 1 0 | 0 0 | 1 1 -> runs: 0 zeros, 1 one, 3 zeros, 2 ones. COCO stores from the 4th run on the
    # difference to the run two before (2 - 1 = 1), one character each (value + 48): "0131".
    m = np.array([[1, 0, 1], [0, 0, 1]], bool)
    assert encode_rle(m)["counts"] == "0131"
    assert np.array_equal(decode_rle({"size": [2, 3], "counts": "0131"}, (2, 3)), m)


def test_corrupt_or_mismatched_rle_is_refused() -> None:
    rle = encode_rle(np.ones((4, 5), bool))
    with pytest.raises(MetricInputError, match="size"):
        decode_rle(rle, (5, 4))
    with pytest.raises(MetricInputError, match="corrupt"):
        decode_rle({"size": [4, 5], "counts": ""}, (4, 5))
    with pytest.raises(MetricInputError, match="corrupt"):
        decode_rle({"size": [4, 5], "counts": "0"}, (4, 5))  # runs cover 0 of 20 pixels
    with pytest.raises(MetricInputError, match="not an RLE digit"):
        decode_rle({"size": [4, 5], "counts": "!!"}, (4, 5))
    with pytest.raises(MetricInputError, match="'size' and 'counts'"):
        decode_rle({"counts": "0"}, (4, 5))


# --- MOTS -------------------------------------------------------------------------------------


def test_perfect_tracking() -> None:
    # 2 frames, 1 object, predicted exactly with one id: TP 2, FP 0, FN 0, IDS 0, every IoU 1.
    # sMOTSA = (sum IoU - FP - IDS) / |GT| = 2 / 2; MOTSA = (TP - FP - IDS) / |GT| = 1; HOTA = 1.
    gt = [frame(OBJ), frame(OBJ)]
    s = score_mots({"seq": (gt, [f.copy() for f in gt])})["combined"]
    assert (s["TP"], s["FP"], s["FN"], s["IDS"]) == (2, 0, 0, 0)
    assert s["sMOTSA"] == 1.0 and s["MOTSA"] == 1.0 and s["MOTSP"] == 1.0
    assert s["HOTA"] == pytest.approx(1.0) and s["IDF1"] == 1.0


def test_one_id_switch() -> None:
    # The prediction changes id between the frames: TP 2, IDS 1 -> MOTSA = sMOTSA = (2 - 1) / 2 = 0.5.
    # HOTA: every detection matches (DetA 1); each of the two (gt, pred) pairs shares 1 of the gt's 2
    # frames and all of the prediction's 1 -> A = 1 / (1 + 1 + 0) = 0.5 -> AssA 0.5, HOTA = sqrt(0.5).
    # IDF1: the best global id match keeps 1 of 2 frames -> IDTP 1, IDFN 1, IDFP 1 -> 2 / 4 = 0.5.
    gt = [frame(OBJ), frame(OBJ)]
    pred = [frame(OBJ), frame((2, 5, 5, 10, 10))]
    s = score_mots({"seq": (gt, pred)})["combined"]
    assert s["IDS"] == 1 and s["TP"] == 2
    assert s["MOTSA"] == pytest.approx(0.5) and s["sMOTSA"] == pytest.approx(0.5)
    assert s["DetA"] == pytest.approx(1.0) and s["AssA"] == pytest.approx(0.5)
    assert s["HOTA"] == pytest.approx(np.sqrt(0.5))
    assert s["IDF1"] == pytest.approx(0.5)


def test_false_positive_track() -> None:
    # An extra predicted object in both frames: TP 2, FP 2 -> MOTSA = (2 - 2) / 2 = 0, sMOTSA 0.
    # HOTA: DetA = TP / (TP + FN + FP) = 2 / 4 at every threshold, AssA 1 -> HOTA = sqrt(0.5).
    gt = [frame(OBJ), frame(OBJ)]
    fp = (7, 20, 25, 5, 10)
    pred = [frame(OBJ, fp), frame(OBJ, fp)]
    s = score_mots({"seq": (gt, pred)})["combined"]
    assert (s["TP"], s["FP"], s["FN"]) == (2, 2, 0)
    assert s["MOTSA"] == pytest.approx(0.0) and s["sMOTSA"] == pytest.approx(0.0)
    assert s["DetA"] == pytest.approx(0.5) and s["HOTA"] == pytest.approx(np.sqrt(0.5))


def test_partial_overlap_counts_its_iou_in_smotsa() -> None:
    # Prediction 10x10 shifted 2 rows: overlap 8x10 = 80, union 120 -> IoU 2/3 >= 0.5: a TP worth 2/3.
    # One frame: sMOTSA = 2/3, MOTSA = 1, MOTSP = 2/3. Shifted 5 rows: IoU 50/150 < 0.5 -> FN + FP, MOTSA -1.
    gt = [frame(OBJ)]
    near = score_mots({"s": (gt, [frame((1, 7, 5, 10, 10))])})["combined"]
    assert near["sMOTSA"] == pytest.approx(2 / 3) and near["MOTSA"] == 1.0
    assert near["MOTSP"] == pytest.approx(2 / 3)
    far = score_mots({"s": (gt, [frame((1, 10, 5, 10, 10))])})["combined"]
    assert (far["TP"], far["FN"], far["FP"]) == (0, 1, 1)
    assert far["MOTSA"] == pytest.approx(-1.0)


def test_missed_object_and_sequences_combine_by_counts() -> None:
    # Sequence a: 2 frames, perfect (2 TP). Sequence b: 3 frames, the object never predicted (3 FN).
    # Combined from the summed counts: MOTSA = (2 - 0 - 0) / 5 = 0.4, not the mean of 1 and 0 (0.5).
    a = [frame(OBJ)] * 2
    b = [frame(OBJ)] * 3
    r = score_mots({"a": (a, a), "b": (b, [frame()] * 3)})
    assert r["sequences"]["a"]["MOTSA"] == 1.0 and r["sequences"]["b"]["MOTSA"] == 0.0
    assert r["sequences"]["b"]["FN"] == 3
    assert r["combined"]["MOTSA"] == pytest.approx(2 / 5)


def test_ignore_region_removes_unmatched_predictions_inside_it() -> None:
    # A false prediction lying wholly in an ignore region is dropped before scoring (KITTI-MOTS); one
    # only 40% inside is kept as a false positive.
    gt = [frame(OBJ)]
    ignore = np.zeros((30, 40), bool)
    ignore[18:30, 20:40] = True
    inside = [frame(OBJ, (7, 20, 25, 5, 10))]
    partly = [frame(OBJ, (7, 15, 25, 5, 10))]  # rows 15..19: 2 of 5 rows inside -> 40%
    assert score_mots({"s": (gt, inside)})["combined"]["FP"] == 1
    assert score_mots({"s": (gt, inside, [ignore])})["combined"]["FP"] == 0
    assert score_mots({"s": (gt, partly, [ignore])})["combined"]["FP"] == 1


def test_ignore_region_does_not_remove_a_matched_prediction() -> None:
    gt = [frame(OBJ)]
    ignore = np.zeros((30, 40), bool)
    ignore[0:20, 0:20] = True  # covers the true object and its prediction
    s = score_mots({"s": (gt, [frame(OBJ)], [ignore])})["combined"]
    assert (s["TP"], s["FP"]) == (1, 0)


def test_kitti_mots_class_split() -> None:
    png = frame((1001, 0, 0, 5, 5), (1002, 10, 10, 5, 5), (2001, 20, 20, 5, 5),
                (KITTI_IGNORE_VALUE, 0, 30, 5, 5))
    cars, ignore = kitti_mots_class(png, KITTI_CLASSES["car"])
    assert set(np.unique(cars)) == {0, 1001, 1002}
    assert ignore.sum() == 25
    people, _ = kitti_mots_class(png, KITTI_CLASSES["pedestrian"])
    assert set(np.unique(people)) == {0, 2001}


def test_ids_are_made_contiguous_for_trackeval() -> None:
    d = sequence_data("s", [frame((40, 0, 0, 3, 3)), frame((40, 0, 0, 3, 3), (9, 10, 10, 3, 3))],
                      [frame((500, 0, 0, 3, 3)), frame()])
    assert [ids.tolist() for ids in d["gt_ids"]] == [[1], [0, 1]]  # 9 -> 0, 40 -> 1
    assert d["num_gt_ids"] == 2 and d["num_tracker_ids"] == 1 and d["num_gt_dets"] == 3
    assert d["similarity_scores"][1].shape == (2, 0)


def test_bad_input_is_named() -> None:
    with pytest.raises(MetricInputError, match="sequence s frame 0"):
        score_mots({"s": ([frame()], [np.zeros((10, 10), np.uint8)])})
    with pytest.raises(MetricInputError, match="sequence s: 2 predicted frames"):
        score_mots({"s": ([frame()], [frame(), frame()])})
    with pytest.raises(MetricInputError, match="integer label map"):
        score_mots({"s": ([frame()], [frame().astype(float)])})
    with pytest.raises(MetricInputError, match="no sequences"):
        score_mots({})
