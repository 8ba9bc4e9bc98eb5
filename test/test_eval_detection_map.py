"""Detection/segmentation mAP@0.5 through COCOeval on hand-made images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from movseg_ros.evaluation.detection_map import ImageDetections, ImageTruth, average_precision
from movseg_ros.evaluation.errors import MetricInputError


def box_mask(box: tuple[int, int, int, int], shape: tuple[int, int] = (40, 40)) -> np.ndarray:
    x0, y0, x1, y1 = box
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


A = (2, 2, 12, 12)     # 10x10
B = (20, 20, 30, 35)   # 10x15


def truth(*boxes, labels=None) -> ImageTruth:
    return ImageTruth(boxes=np.array(boxes, float).reshape(-1, 4),
                      masks=np.array([box_mask(b) for b in boxes]).reshape(-1, 40, 40), labels=labels)


def preds(boxes, scores, labels=None, masks=None) -> ImageDetections:
    if masks is None:
        masks = np.array([box_mask(b) for b in boxes]).reshape(-1, 40, 40)
    return ImageDetections(scores=np.array(scores, float), boxes=np.array(boxes, float).reshape(-1, 4),
                           masks=masks, labels=labels)


@pytest.mark.parametrize("kind", ["bbox", "segm"])
def test_perfect_detections_score_one(kind: str) -> None:
    r = average_precision([preds([A, B], [0.9, 0.8]), preds([A], [0.7])], [truth(A, B), truth(A)], kind)
    assert r.ap == pytest.approx(1.0)
    assert (r.n_truth, r.n_predictions, r.images) == (3, 3, 2)


@pytest.mark.parametrize("kind", ["bbox", "segm"])
def test_half_recall_is_51_of_101_recall_points(kind: str) -> None:
    # Two objects, one found exactly: precision 1 up to recall 0.5, nothing beyond. COCO samples precision
    # at recall 0, 0.01, ..., 1: the 51 points up to 0.50 are 1, the other 50 are 0 -> AP = 51/101.
    r = average_precision([preds([A], [0.9])], [truth(A, B)], kind)
    assert r.ap == pytest.approx(51 / 101)


def test_a_higher_scored_false_positive_halves_precision() -> None:
    # Ranked: a false box (0.95) then the true one (0.9). Recall 1 is reached at precision 1/2, and the
    # interpolated precision is 1/2 at every recall point -> AP = 0.5.
    r = average_precision([preds([B, A], [0.95, 0.9])], [truth(A)])
    assert r.ap == pytest.approx(0.5)
    # Scored below the true one, the same false box costs nothing.
    assert average_precision([preds([B, A], [0.5, 0.9])], [truth(A)]).ap == pytest.approx(1.0)


def test_iou_threshold_decides_a_match() -> None:
    # Truth 10x10 at x 2..12. Shifted by 3 px: overlap 7x10 = 70, union 130 -> IoU 0.538 (a hit at 0.5);
    # shifted by 4 px: 60 / 140 = 0.429 (a miss).
    hit = (5, 2, 15, 12)
    miss = (6, 2, 16, 12)
    assert average_precision([preds([hit], [0.9])], [truth(A)]).ap == pytest.approx(1.0)
    assert average_precision([preds([miss], [0.9])], [truth(A)]).ap == pytest.approx(0.0)
    assert average_precision([preds([hit], [0.9])], [truth(A)], iou_threshold=0.6).ap == pytest.approx(0.0)


def test_segm_scores_masks_not_boxes() -> None:
    # The predicted box equals the truth box, but its mask is only the left 4 of 10 columns: mask IoU
    # 40 / 100 = 0.4 < 0.5 -> box AP 1, mask AP 0.
    thin = box_mask((2, 2, 6, 12))[None]
    p = preds([A], [0.9], masks=thin)
    assert average_precision([p], [truth(A)], "bbox").ap == pytest.approx(1.0)
    assert average_precision([p], [truth(A)], "segm").ap == pytest.approx(0.0)


def test_classes_are_scored_apart_and_averaged() -> None:
    # Class 1 found; class 2's object detected as class 1 (a false positive for class 1, a miss for 2).
    t = truth(A, B, labels=np.array([1, 2]))
    p = preds([A, B], [0.9, 0.8], labels=np.array([1, 1]))
    r = average_precision([p], [t])
    assert r.per_class == pytest.approx({1: 1.0, 2: 0.0})  # class 1: the FP ranks below the TP -> AP 1
    assert r.ap == pytest.approx(0.5)


def test_no_predictions_and_images_without_truth() -> None:
    empty = ImageDetections(scores=np.zeros(0), boxes=np.zeros((0, 4)))
    assert average_precision([empty], [truth(A)]).ap == pytest.approx(0.0)
    # A detection on an image with no truth is a false positive ranked above the true one.
    none = ImageTruth(boxes=np.zeros((0, 4)))
    r = average_precision([preds([B], [0.95]), preds([A], [0.9])], [none, truth(A)])
    assert r.ap == pytest.approx(0.5)


def test_max_detections_keeps_the_highest_scores() -> None:
    # With one detection kept per image, only the 0.95 false positive survives -> AP 0.
    r = average_precision([preds([B, A], [0.95, 0.9])], [truth(A)], max_detections=1)
    assert r.ap == pytest.approx(0.0)


def test_bad_input_is_named() -> None:
    with pytest.raises(MetricInputError, match="differ in count"):
        average_precision([ImageDetections(scores=np.ones(2), boxes=np.zeros((1, 4)))], [truth(A)])
    with pytest.raises(MetricInputError, match="x1 >= x0"):
        average_precision([preds([(10, 0, 5, 5)], [0.9], masks=np.zeros((1, 40, 40)))], [truth(A)])
    with pytest.raises(MetricInputError, match="needs masks"):
        average_precision([ImageDetections(scores=np.ones(1), boxes=np.array([A]))], [truth(A)], "segm")
    with pytest.raises(MetricInputError, match="kind"):
        average_precision([], [], "keypoints")
    with pytest.raises(MetricInputError, match="differ in size"):
        average_precision([preds([A], [0.9], masks=np.zeros((1, 30, 30), bool))], [truth(A)], "segm")
