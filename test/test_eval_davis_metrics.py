"""DAVIS J, F, statistics and the binary/instance protocols: hand-worked cases, then agreement with
trackeval's JAndF (a port of the official davis2017-evaluation code) on blobs and on real DAVIS masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from movseg_ros.datasets.davis import default_root, find_sequences
from movseg_ros.evaluation.davis_metrics import (
    InstanceScores, MetricInputError, SequenceScores, boundary_f, boundary_map, decay_bins, jaccard,
    score_binary_sequence, score_instance_sequence, semi_supervised_frames, statistics, summarise,
    tolerance_pixels)


def square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    return m


# --- J ------------------------------------------------------------------------------------------


def test_jaccard_of_two_squares_by_counting() -> None:
    # 4x4 squares offset by (1, 2): overlap 3 rows x 2 cols = 6 px; union 16 + 16 - 6 = 26.
    a = square((10, 10), 2, 2, 4)
    b = square((10, 10), 3, 4, 4)
    assert jaccard(a, b) == pytest.approx(6 / 26)


def test_jaccard_leaves_void_pixels_out() -> None:
    # Same squares; void covers column 2, where a has 4 px (rows 2..5) and b none: a keeps 12 px, the
    # overlap (cols 4..5) keeps its 6, so union = 12 + 16 - 6 = 22.
    a = square((10, 10), 2, 2, 4)
    b = square((10, 10), 3, 4, 4)
    void = np.zeros((10, 10), bool)
    void[:, 2] = True
    assert jaccard(a, b, void) == pytest.approx(6 / 22)


def test_jaccard_empty_on_empty_is_one_and_void_everywhere_too() -> None:
    e = np.zeros((3, 3), bool)
    assert jaccard(e, e) == 1.0
    m = np.ones((3, 3), bool)
    assert jaccard(m, e, void=np.ones((3, 3), bool)) == 1.0


# --- boundaries and F ---------------------------------------------------------------------------


def test_boundary_map_of_a_square_is_a_ring_offset_towards_the_origin() -> None:
    # A pixel is boundary if it differs from its right, lower or lower-right neighbour, so the ring runs
    # from (1, 1) to (5, 5) for a square covering rows/cols 2..5: 5x5 = 25 minus the 3x3 inside = 16 px.
    m = square((8, 8), 2, 2, 4)
    expected = np.zeros((8, 8), bool)
    expected[1:6, 1:6] = True
    expected[2:5, 2:5] = False
    assert np.array_equal(boundary_map(m), expected)
    assert boundary_map(m).sum() == 16


def test_boundary_map_edge_rows_as_the_official_code() -> None:
    # A full mask has no boundary: the last row compares to the right only, the last column downwards only.
    assert boundary_map(np.ones((4, 5), bool)).sum() == 0
    # A mask filling the last column: that column compares downwards only (and the corner never), so it has
    # no boundary pixels; column 3 differs from its right neighbour in every row, the last row included.
    m = np.zeros((4, 5), bool)
    m[:, 4] = True
    expected = np.zeros((4, 5), bool)
    expected[:, 3] = True
    assert np.array_equal(boundary_map(m), expected)


def test_tolerance_is_the_ceiling_of_a_fraction_of_the_diagonal() -> None:
    assert tolerance_pixels((480, 854)) == 8      # 0.008 * 979.6 = 7.84 -> 8
    assert tolerance_pixels((100, 100)) == 2      # 0.008 * 141.4 = 1.13 -> 2
    assert tolerance_pixels((100, 100), 3) == 3   # >= 1: a radius in pixels
    with pytest.raises(MetricInputError, match="bound_th"):
        tolerance_pixels((100, 100), 0)


def test_boundary_f_within_tolerance_is_one() -> None:
    # 100x100 image -> tolerance 2 px; a 2 px shift keeps every boundary pixel within disk(2) of the other.
    a = square((100, 100), 20, 20, 40)
    assert boundary_f(np.roll(a, 2, axis=1), a) == 1.0


def test_boundary_f_outside_tolerance_counted_by_hand() -> None:
    # Shift by 3 columns. The truth ring (rows/cols 19..59) has 160 px. Unmatched in it: the whole left edge
    # (col 19, 41 px: nearest shifted pixel is 3 away) and the right edge rows 22..56 (35 px: the shifted top
    # and bottom rows are > 2 away, its right edge is 3 away). 84 of 160 match both ways by symmetry:
    # P = R = 84/160 = 0.525, F = 0.525.
    a = square((100, 100), 20, 20, 40)
    assert boundary_f(np.roll(a, 3, axis=1), a) == pytest.approx(0.525)


def test_boundary_f_edge_cases_of_empty_boundaries() -> None:
    e = np.zeros((20, 20), bool)
    m = square((20, 20), 5, 5, 6)
    assert boundary_f(e, e) == 1.0  # neither has a boundary: P = R = 1
    assert boundary_f(e, m) == 0.0  # no predicted boundary: P = 1, R = 0
    assert boundary_f(m, e) == 0.0  # no true boundary: P = 0, R = 1
    assert boundary_f(np.ones((20, 20), bool), e) == 1.0  # a full mask has no boundary either (official)


def test_sizes_must_match() -> None:
    with pytest.raises(MetricInputError, match="differ in size"):
        boundary_f(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(MetricInputError, match="void mask"):
        jaccard(np.zeros((3, 3)), np.zeros((3, 3)), void=np.zeros((2, 2)))
    with pytest.raises(MetricInputError, match="2-D"):
        jaccard(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)))


# --- statistics ---------------------------------------------------------------------------------


def test_decay_bins_for_eight_frames() -> None:
    # linspace(1, 8, 5) = 1, 2.75, 4.5, 6.25, 8 -> round -> 1, 3, 5, 6, 8 -> minus 1 -> 0, 2, 4, 5, 7.
    assert decay_bins(8) == [(0, 2), (2, 4), (4, 5), (5, 7)]


def test_statistics_on_a_known_series() -> None:
    v = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    s = statistics(v)
    assert s.mean == pytest.approx(0.65)
    assert s.recall == pytest.approx(5 / 8)  # 0.5 itself is not over 0.5
    assert s.decay == pytest.approx((1.0 + 0.9 + 0.8) / 3 - (0.5 + 0.4 + 0.3) / 3)  # = 0.5


def test_statistics_ignore_nan_in_mean_but_not_in_recall() -> None:
    s = statistics([1.0, np.nan, 0.0, 1.0])
    assert s.mean == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 4)
    with pytest.raises(MetricInputError):
        statistics([])


# --- sequences ----------------------------------------------------------------------------------


def test_binary_sequence_scores_every_frame_and_semi_supervised_drops_ends() -> None:
    truth = [square((40, 40), 10, 10, 10)] * 4
    preds = [truth[0], np.zeros((40, 40), bool), truth[0], square((40, 40), 10, 15, 10)]
    s = score_binary_sequence(preds, truth)
    # Frame 3: 10x10 squares offset 5 cols: inter 50, union 150.
    assert s.j.tolist() == pytest.approx([1.0, 0.0, 1.0, 50 / 150])
    assert s.f[0] == 1.0 and s.f[1] == 0.0
    assert s.jf == pytest.approx((s.j.mean() + s.f.mean()) / 2)
    semi = score_binary_sequence(preds, truth, frames=semi_supervised_frames(4))
    assert semi.frames == (1, 2)
    assert semi.j.tolist() == [0.0, 1.0]


def test_binary_sequence_rejects_mismatched_inputs() -> None:
    t = [np.zeros((5, 5), bool)] * 3
    with pytest.raises(MetricInputError, match="3 truth frames"):
        score_binary_sequence(t[:2], t)
    with pytest.raises(MetricInputError, match="frame 1: prediction"):
        score_binary_sequence([t[0], np.zeros((4, 5), bool), t[0]], t)
    with pytest.raises(MetricInputError, match="outside the sequence"):
        score_binary_sequence(t, t, frames=[0, 3])


def two_objects(frames: int = 4) -> list[np.ndarray]:
    out = []
    for i in range(frames):
        lab = np.zeros((40, 60), np.uint8)
        lab[5:15, 5 + i:15 + i] = 1
        lab[20:35, 30:45] = 2
        out.append(lab)
    return out


def test_instance_matching_undoes_swapped_ids() -> None:
    truth = two_objects()
    preds = [np.choose(t, [0, 2, 1]).astype(np.uint8) for t in truth]  # ids 1 and 2 swapped
    s = score_instance_sequence(preds, truth)
    assert s.matches == {1: 2, 2: 1}
    for obj in s.objects.values():
        assert obj.j.tolist() == [1.0] * 4 and obj.f.tolist() == [1.0] * 4
    assert summarise([s]).jf_mean == 1.0


def test_instance_object_without_a_prediction_scores_zero_where_visible() -> None:
    truth = two_objects()
    truth[3][truth[3] == 2] = 0  # object 2 leaves in the last frame
    preds = [(t == 1).astype(np.uint8) for t in truth]  # only object 1 is predicted
    s = score_instance_sequence(preds, truth)
    assert s.matches == {1: 1, 2: None}
    # Object 2 is paired with an empty proposal: J = F = 0 where it is visible, 1 where both are empty.
    assert s.objects[2].j.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert s.objects[2].f.tolist() == [0.0, 0.0, 0.0, 1.0]
    summary = summarise([s])
    assert summary.n_objects == 2
    assert summary.j.mean == pytest.approx((1.0 + 0.25) / 2)


def test_instance_false_positive_proposal_is_left_unmatched() -> None:
    truth = [(t == 1).astype(np.uint8) for t in two_objects()]
    preds = [t.copy() for t in two_objects()]  # object 2 is an extra, false proposal
    s = score_instance_sequence(preds, truth)
    assert s.matches == {1: 1}
    assert summarise([s]).jf_mean == 1.0


def test_instance_refuses_more_proposals_than_allowed() -> None:
    truth = two_objects(2)
    preds = [np.where(t > 0, 21, 0).astype(np.uint8) for t in truth]
    with pytest.raises(MetricInputError, match="exceeds the 20 proposals"):
        score_instance_sequence(preds, truth)
    s = score_instance_sequence(preds, truth, max_predictions=None)
    assert set(s.objects) == {1, 2}


def test_instance_rejects_float_label_maps() -> None:
    truth = two_objects(2)
    with pytest.raises(MetricInputError, match="integer label map"):
        score_instance_sequence([t.astype(float) for t in truth], truth)


def test_summary_averages_over_objects_not_sequences() -> None:
    truth = two_objects()
    perfect = score_instance_sequence(truth, truth)  # 2 objects at J = 1
    empty = score_binary_sequence([np.zeros((40, 60), bool)] * 4, [t > 0 for t in truth])  # 1 object at J = 0
    s = summarise([perfect, empty])
    assert s.n_objects == 3
    assert s.j.mean == pytest.approx(2 / 3)
    assert "J&F-Mean" in s.table() and s.as_dict()["J-Mean"] == pytest.approx(2 / 3)
    with pytest.raises(MetricInputError):
        summarise([])


# --- agreement with trackeval's JAndF (the official DAVIS code) ---------------------------------


# pycocotools' decode inside trackeval warns under numpy 2 (copy keyword); harmless here.
REFERENCE_WARNINGS = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def jandf_reference(pred_labels: list[np.ndarray], truth_labels: list[np.ndarray]) -> dict[str, float]:
    """trackeval's JAndF on label maps whose ids are 1..K, matched on J&F as the official unsupervised task."""
    from pycocotools import mask as mask_utils
    from trackeval.metrics import JAndF

    def dets(labels: list[np.ndarray]) -> tuple[list[np.ndarray], list[list[dict]], int]:
        ids_t, dets_t, seen = [], [], set()
        for lab in labels:
            ids = [int(k) for k in np.unique(lab) if k != 0]
            seen.update(ids)
            ids_t.append(np.array([k - 1 for k in ids], int))
            dets_t.append([mask_utils.encode(np.asfortranarray((lab == k).astype(np.uint8))) for k in ids])
        assert seen == set(range(1, len(seen) + 1)), "reference needs ids 1..K"
        return ids_t, dets_t, len(seen)

    gt_ids, gt_dets, n_gt = dets(truth_labels)
    tr_ids, tr_dets, n_tr = dets(pred_labels)
    data = {"num_timesteps": len(truth_labels), "num_gt_ids": n_gt, "num_tracker_ids": n_tr,
            "gt_ids": gt_ids, "gt_dets": gt_dets, "tracker_ids": tr_ids, "tracker_dets": tr_dets}
    metric = JAndF()
    metric.optim_type = "J&F"
    return metric.eval_sequence(data)


def assert_agrees(ours, ref: dict[str, float]) -> None:
    s = summarise([ours])
    mine = {"J-Mean": s.j.mean, "J-Recall": s.j.recall, "J-Decay": s.j.decay,
            "F-Mean": s.f.mean, "F-Recall": s.f.recall, "F-Decay": s.f.decay, "J&F": s.jf_mean}
    for k, v in mine.items():
        assert v == pytest.approx(float(ref[k]), abs=1e-6), k


def blob_sequence(rng: np.random.Generator, frames: int, objects: int,
                  shape: tuple[int, int] = (96, 128)) -> list[np.ndarray]:
    """Moving, overlapping ellipses (later ids drawn on top), every id visible in frame 0."""
    starts = [(rng.uniform(20, shape[1] - 20), rng.uniform(20, shape[0] - 20)) for _ in range(objects)]
    speeds = [rng.uniform(-3, 3, 2) for _ in range(objects)]
    axes = [(int(rng.integers(6, 22)), int(rng.integers(6, 22))) for _ in range(objects)]
    out = []
    for t in range(frames):
        lab = np.zeros(shape, np.uint8)
        for k in range(objects):
            cx, cy = starts[k][0] + speeds[k][0] * t, starts[k][1] + speeds[k][1] * t
            cv2.ellipse(lab, (int(cx), int(cy)), axes[k], 15.0 * t, 0, 360, k + 1, -1)
        out.append(lab)
    return out


def perturb(labels: list[np.ndarray], rng: np.random.Generator, swap: bool) -> list[np.ndarray]:
    """Predictions: each frame shifted, eroded or dilated a little, some frames dropped, ids maybe permuted."""
    k = int(max(l.max() for l in labels))
    perm = np.arange(k + 1)
    if swap:
        perm[1:] = rng.permutation(np.arange(1, k + 1))
    out = []
    for t, lab in enumerate(labels):
        p = perm[lab].astype(np.uint8)
        kind = t % 4
        if kind == 1:
            p = np.roll(p, int(rng.integers(1, 6)), axis=int(rng.integers(0, 2)))
        elif kind == 2:
            p = cv2.erode(p, np.ones((3, 3), np.uint8))
        elif kind == 3:
            p = cv2.dilate(p, np.ones((5, 5), np.uint8))
        if t == 5:
            p[:] = 0
        out.append(p)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@REFERENCE_WARNINGS
def test_binary_agrees_with_trackeval_jandf_on_blobs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = [(l > 0).astype(np.uint8) for l in blob_sequence(rng, 13, 2)]
    preds = [(p > 0).astype(np.uint8) for p in perturb(truth, rng, swap=False)]
    preds[7][:] = 0
    truth[7][:] = 0  # a frame where both are empty: J = F = 1
    assert_agrees(score_binary_sequence(preds, truth), jandf_reference(preds, truth))


@pytest.mark.parametrize("seed,objects,proposals", [(3, 2, 2), (4, 3, 3), (5, 3, 2), (6, 2, 4)])
@REFERENCE_WARNINGS
def test_instance_agrees_with_trackeval_jandf_on_blobs(seed: int, objects: int, proposals: int) -> None:
    rng = np.random.default_rng(seed)
    truth = blob_sequence(rng, 11, objects)
    truth[9][truth[9] == 2] = 0  # object 2 is out of view in frame 9: J = F = 1 there if left unmatched
    if proposals >= objects:
        preds = perturb(blob_sequence(rng, 11, proposals) if proposals > objects else truth, rng, swap=True)
        if proposals > objects:  # the truth objects plus extra proposals drawn under them
            preds = [np.where(t > 0, t, p) for t, p in zip(perturb(truth, rng, swap=True), preds)]
    else:  # fewer proposals than objects: one object is never predicted
        preds = [np.where(p > proposals, 0, p).astype(np.uint8) for p in perturb(truth, rng, swap=False)]
    ours = score_instance_sequence(preds, truth)
    assert isinstance(ours, InstanceScores) and len(ours.objects) == objects
    assert_agrees(ours, jandf_reference(preds, truth))


def davis_truth(names: list[str]) -> list[tuple[str, list[np.ndarray]]]:
    root = default_root()
    if not root.is_dir():
        pytest.skip(f"DAVIS dev set not found at {root} (set MOVSEG_DAVIS)")
    return [(s.name, [s.binary(i) for i in range(len(s))]) for s in find_sequences(root, names)]


@REFERENCE_WARNINGS
def test_binary_agrees_with_trackeval_on_real_davis_masks() -> None:
    for name, truth in davis_truth(["car-shadow"]):
        truth = [t.astype(np.uint8) for t in truth]
        rng = np.random.default_rng(7)
        preds = perturb(truth, rng, swap=False)
        ours = score_binary_sequence(preds, truth)
        assert isinstance(ours, SequenceScores)
        assert 0.3 < ours.j_stats.mean < 1.0, name  # a perturbed truth: imperfect but close
        assert_agrees(ours, jandf_reference(preds, truth))


@REFERENCE_WARNINGS
def test_instance_agrees_with_trackeval_on_real_davis_masks() -> None:
    for name, truth in davis_truth(["motocross-jump"]):
        # Two "objects": the foreground left and right of the first frame's centroid column.
        cx = int(np.nonzero(truth[0])[1].mean())
        labels = []
        for t in truth:
            lab = t.astype(np.uint8)
            lab[:, cx:] *= 2
            labels.append(lab)
        rng = np.random.default_rng(8)
        preds = perturb(labels, rng, swap=True)
        ours = score_instance_sequence(preds, labels)
        assert len(ours.objects) == 2, name
        assert_agrees(ours, jandf_reference(preds, labels))
