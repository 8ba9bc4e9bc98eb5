"""FBMS measures on hand-made label maps: the official one (MoSegEvalPR), seed 000's proposed one, ΔObj."""

from __future__ import annotations

import numpy as np
import pytest

from movseg_ros.evaluation.errors import MetricInputError
from movseg_ros.evaluation.fbms_metrics import (
    count_objects, delta_obj, fbms_official_sequence, fbms_proposed_sequence, summarise_official,
    summarise_proposed)


def scene() -> np.ndarray:
    """10x10 frame: background 0 (70 px), object 1 (rows 0-3 x cols 0-4: 20 px), object 2 (row 9, 10 px)."""
    lab = np.zeros((10, 10), np.uint8)
    lab[0:4, 0:5] = 1
    lab[9, :] = 2
    return lab


def one_object() -> np.ndarray:
    lab = scene()
    lab[lab == 2] = 0  # background 80 px, object 1 20 px
    return lab


def with_false_positive(lab: np.ndarray) -> np.ndarray:
    """The same prediction plus a 10 px region (label 5) on background rows 6-7, cols 5-9."""
    out = lab.copy()
    out[6:8, 5:10] = 5
    return out


def fp_region() -> np.ndarray:
    m = np.zeros((10, 10), bool)
    m[6:8, 5:10] = True
    return m


# --- official ---------------------------------------------------------------------------------


def test_official_perfect_prediction() -> None:
    s = fbms_official_sequence([one_object()], [one_object()])
    assert (s.precision, s.recall, s.f) == (1.0, 1.0, 1.0)
    assert s.n_extracted == 1 and s.n_visible == 1  # background and object over 0.75, minus the background
    assert s.matches == {0: 0, 1: 1}


def test_false_positive_on_unlabeled_pixels_lowers_proposed_f_but_not_official_f() -> None:
    # The FP region lies on pixels the truth leaves unlabeled. Official: those pixels weigh nothing, so
    # every region keeps P = R = 1 and the extra cluster is unmatched and ignored -> F stays 1.
    # Proposed: every pixel counts; predictions 1 (20 px, matched) and 5 (10 px, unmatched):
    # P = 20 / 30, R = 20 / 20, F = 2 * (2/3) * 1 / (2/3 + 1) = 0.8.
    truth, void = [one_object()], [fp_region()]
    clean, extra = [one_object()], [with_false_positive(one_object())]
    off_clean = fbms_official_sequence(clean, truth, void)
    off_extra = fbms_official_sequence(extra, truth, void)
    assert off_extra.f == off_clean.f == 1.0
    assert off_extra.n_extracted == off_clean.n_extracted == 1
    assert 5 not in off_extra.matches.values()
    prop_clean = fbms_proposed_sequence(clean, truth)
    prop_extra = fbms_proposed_sequence(extra, truth)
    assert prop_clean.f == 1.0
    assert prop_extra.precision == pytest.approx(2 / 3)
    assert prop_extra.recall == 1.0
    assert prop_extra.f == pytest.approx(0.8)


def test_false_positive_on_labeled_background() -> None:
    # The official code averages over the background region too: the FP takes 10 of its 80 px from the
    # predicted background, so background R = 70/80 = 0.875 (P = 1); object P = R = 1.
    # avg P = 1, avg R = (0.875 + 1) / 2 = 0.9375, F = 2 * 0.9375 / 1.9375 = 0.96774.
    truth = [one_object()]
    extra = [with_false_positive(one_object())]
    s = fbms_official_sequence(extra, truth)
    assert s.precision == 1.0
    assert s.recall == pytest.approx(0.9375)
    assert s.f == pytest.approx(2 * 0.9375 / 1.9375)
    # Averaged over object regions only (include_background=False) the FP changes nothing at all.
    objects_only = fbms_official_sequence(extra, truth, include_background=False)
    assert objects_only.f == 1.0 and objects_only.n_extracted == 1 and objects_only.n_visible == 1
    # The proposed measure: P = 20 / 30 again.
    assert fbms_proposed_sequence(extra, truth).precision == pytest.approx(2 / 3)


def test_official_region_without_a_cluster_counts_precision_one_recall_zero() -> None:
    # Truth: background (70), object 1 (20), object 2 (10). Prediction: object 1 exact, the rest label 0
    # (80 px = background + object 2). 3 regions > 2 clusters: background <- 0 (P = 70/80, R = 1, F = 0.9333),
    # object 1 <- 1 (F = 1), object 2 left without a cluster: P = 1, R = 0, F = 0.
    # avg P = (0.875 + 1 + 1) / 3, avg R = (1 + 1 + 0) / 3; N = 2 over 0.75 - 1 = 1; visible objects 2.
    pred = one_object()
    s = fbms_official_sequence([pred], [scene()])
    assert s.matches == {0: 0, 1: 1, 2: None}
    assert s.region_scores[2] == (1.0, 0.0, 0.0)
    p, r = (0.875 + 2) / 3, 2 / 3
    assert s.precision == pytest.approx(p)
    assert s.recall == pytest.approx(r)
    assert s.f == pytest.approx(2 * p * r / (p + r))
    assert (s.n_extracted, s.n_visible) == (1, 2)


def test_official_summary_is_f_of_the_averaged_p_and_r() -> None:
    a = fbms_official_sequence([one_object()], [one_object()])   # P = R = 1
    b = fbms_official_sequence([one_object()], [scene()])        # P = 0.9583, R = 0.6667
    s = summarise_official([a, b])
    p, r = (1 + (0.875 + 2) / 3) / 2, (1 + 2 / 3) / 2
    assert s.precision == pytest.approx(p)
    assert s.recall == pytest.approx(r)
    assert s.f == pytest.approx(2 * p * r / (p + r))
    assert (s.n_extracted, s.n_visible, s.sequences) == (2, 3, 2)


def test_official_matching_is_hungarian_not_greedy() -> None:
    # Prediction 7 covers object 1 (20 px) plus 5 px of object 2; prediction 9 the other 5 px of object 2.
    # Pairs: (1, 7) F = 2*0.8*1/1.8 = 0.889; (2, 7) F = 0.286; (2, 9) F = 2*1*0.5/1.5 = 0.667.
    # The best assignment gives 7 to object 1 and 9 to object 2.
    truth = scene()
    pred = np.zeros_like(truth)
    pred[truth == 1] = 7
    pred[9, 0:5] = 7
    pred[9, 5:10] = 9
    s = fbms_official_sequence([pred], [truth])
    assert s.matches[1] == 7 and s.matches[2] == 9
    assert s.region_scores[2][2] == pytest.approx(2 / 3)
    prop = fbms_proposed_sequence([pred], [truth])
    # Proposed: matched intersections 20 + 5 = 25 of 30 predicted and 30 true pixels.
    assert prop.matches == {1: 7, 2: 9}
    assert prop.precision == pytest.approx(25 / 30) and prop.recall == pytest.approx(25 / 30)


def test_pixels_are_pooled_over_annotated_frames() -> None:
    # Frame 0: object (20 px) found exactly; frame 1: a 60 px object, nothing predicted.
    # Pooled recall = 20 / 80 = 0.25 (a per-frame mean would say 0.5); precision = 20 / 20.
    big = np.zeros((10, 10), np.uint8)
    big[0:6, :] = 1
    truth = [one_object(), big]
    pred = [one_object(), np.zeros((10, 10), np.uint8)]
    prop = fbms_proposed_sequence(pred, truth)
    assert prop.recall == pytest.approx(0.25) and prop.precision == 1.0
    off = fbms_official_sequence(pred, truth, include_background=False)
    assert off.recall == pytest.approx(0.25)


def test_proposed_summary_averages_f_over_sequences() -> None:
    a = fbms_proposed_sequence([one_object()], [one_object()])  # F = 1
    b = fbms_proposed_sequence([with_false_positive(one_object())], [one_object()])  # F = 0.8
    s = summarise_proposed([a, b])
    assert s.f == pytest.approx(0.9)
    assert s.precision == pytest.approx((1 + 2 / 3) / 2)


def test_proposed_with_no_prediction_scores_zero() -> None:
    s = fbms_proposed_sequence([np.zeros((10, 10), np.uint8)], [one_object()])
    assert (s.precision, s.recall, s.f) == (0.0, 0.0, 0.0)


# --- ΔObj and errors --------------------------------------------------------------------------


def test_delta_obj_is_the_mean_absolute_count_difference() -> None:
    # |2 - 2| + |3 - 1| + |1 - 1| = 2 over 3 sequences.
    assert delta_obj([2, 3, 1], [2, 1, 1]) == pytest.approx(2 / 3)
    assert delta_obj([0], [4]) == 4.0
    with pytest.raises(MetricInputError, match="3 true counts"):
        delta_obj([1, 2], [1, 2, 3])


def test_count_objects_ignores_background_and_counts_ids_once() -> None:
    assert count_objects([scene(), one_object(), with_false_positive(scene())]) == 3  # ids 1, 2, 5
    assert count_objects([np.zeros((4, 4), np.uint8)]) == 0


def test_bad_input_is_named() -> None:
    with pytest.raises(MetricInputError, match="frame 0: prediction"):
        fbms_official_sequence([np.zeros((4, 4), int)], [np.zeros((5, 4), int)])
    with pytest.raises(MetricInputError, match="integer label map"):
        fbms_proposed_sequence([np.zeros((4, 4), float)], [np.zeros((4, 4), int)])
    with pytest.raises(MetricInputError, match="annotated frames"):
        fbms_official_sequence([], [])
    with pytest.raises(MetricInputError, match="no visible truth region"):
        fbms_official_sequence([np.zeros((4, 4), int)], [np.zeros((4, 4), int)], include_background=False)
