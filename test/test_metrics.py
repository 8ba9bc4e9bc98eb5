"""davis_metrics.jaccard: region similarity J as DAVIS defines it."""

from __future__ import annotations

import numpy as np
import pytest

from movseg_ros.evaluation.davis_metrics import jaccard


def test_identical_masks_score_one() -> None:
    m = np.zeros((4, 5), bool)
    m[1:3, 1:4] = True
    assert jaccard(m, m) == 1.0


def test_disjoint_masks_score_zero() -> None:
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, 0] = True
    b[3, 3] = True
    assert jaccard(a, b) == 0.0


def test_partial_overlap_is_intersection_over_union() -> None:
    a = np.zeros((1, 6), bool)
    b = np.zeros((1, 6), bool)
    a[0, 0:4] = True  # 4 pixels
    b[0, 2:6] = True  # 4 pixels, 2 shared -> union 6
    assert jaccard(a, b) == pytest.approx(2 / 6)
    assert jaccard(b, a) == pytest.approx(2 / 6)


def test_prediction_inside_truth() -> None:
    truth = np.ones((3, 3), bool)
    pred = np.zeros((3, 3), bool)
    pred[1, 1] = True
    assert jaccard(pred, truth) == pytest.approx(1 / 9)


def test_empty_prediction_on_empty_truth_scores_one() -> None:
    empty = np.zeros((3, 3), bool)
    assert jaccard(empty, empty) == 1.0


def test_empty_prediction_on_nonempty_truth_scores_zero() -> None:
    truth = np.zeros((3, 3), bool)
    truth[0, 0] = True
    assert jaccard(np.zeros((3, 3), bool), truth) == 0.0
    assert jaccard(truth, np.zeros((3, 3), bool)) == 0.0


def test_nonzero_integer_masks_count_as_foreground() -> None:
    pred = np.array([[0, 7], [3, 0]], np.uint16)  # label maps: any id is foreground
    truth = np.array([[0, 1], [0, 0]], np.uint8)
    assert jaccard(pred, truth) == pytest.approx(1 / 2)


def test_size_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        jaccard(np.zeros((3, 4), bool), np.zeros((4, 3), bool))
