"""STEm-Seg's smooth masks: tube probabilities upsampled bilinearly place an edge between the output's cells,
where the output grid's labels upsampled nearest can only put it on a cell border."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.segmenters.stem_seg import grid_to_image, smooth_labels

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN = Path(os.environ.get("MOVSEG_DAVIS_TRAIN", Path(__file__).resolve().parents[2] / "shared/data/davis2016-train"))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def _soft_disc(yy: np.ndarray, xx: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-(r - np.hypot(xx - cx, yy - cy)) / 2.0))).astype(np.float32)


def test_a_disc_is_recovered_from_a_coarse_probability_better_than_from_coarse_labels() -> None:
    """A disc's soft probability on a grid 8x coarser, each cell standing for its top-left pixel as in
    training: the smooth mask at full size matches the disc closely; the coarse labels give a blocky disc."""
    size, factor, (cx, cy, r) = 256, 8, (121.3, 133.7, 61.5)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = np.hypot(xx - cx, yy - cy) <= r
    cy_, cx_ = np.mgrid[0:size:factor, 0:size:factor]
    coarse = _soft_disc(cy_, cx_, cx, cy, r)
    smooth = smooth_labels({7: coarse}, (size, size), 0.5)
    blocky = grid_to_image((coarse > 0.5).astype(np.uint16) * 7, (size, size), (size, size), cv2.INTER_NEAREST)
    assert set(np.unique(smooth)) == {0, 7}
    assert _iou(smooth == 7, disc) > 0.98 and _iou(smooth == 7, disc) > _iou(blocky == 7, disc) + 0.01


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_masks_land_where_training_put_them() -> None:
    """Boxes brought to the network's grid as training brings its targets there, then back to the frame by
    grid_to_image, land on the originals: over 16 sub-cell positions the centroid is off by under a pixel on
    average at 854x480; resizing the grid as an image moves them about 5 pixels right and down."""
    import torch

    from movseg_ros.training.stemseg import output_size_targets

    (h, w), work = (480, 854), (144, 256)
    yy, xx = np.mgrid[0:h, 0:w]
    errors, naive_errors, ious = [], [], []
    for k in range(16):
        truth = (np.abs(xx - 380.0 - 1.7 * k) < 120) & (np.abs(yy - 220.0 - 0.9 * k) < 90)
        small = cv2.resize(truth.astype(np.float32), work[::-1], interpolation=cv2.INTER_AREA) > 0.5
        ids, _ = output_size_targets(torch.from_numpy(small)[None].long(), torch.zeros(1, *work, dtype=torch.bool),
                                     (36, 64))
        grid = ids[0].numpy().astype(np.float32)
        back = grid_to_image(grid, (h, w), work, cv2.INTER_LINEAR) > 0.5
        naive = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
        errors.append(_centroid(back) - _centroid(truth))
        naive_errors.append(_centroid(naive) - _centroid(truth))
        ious.append((_iou(back, truth), _iou(naive, truth)))
    assert np.abs(np.mean(errors, 0)).max() < 1.0, np.mean(errors, 0)
    assert (np.mean(naive_errors, 0) > 4.0).all(), np.mean(naive_errors, 0)
    assert np.mean([a - b for a, b in ious]) > 0.02


def test_two_tubes_split_the_frame_at_the_more_probable_and_nothing_below_the_threshold() -> None:
    left = np.array([[0.9, 0.8, 0.2, 0.0]], np.float32).repeat(2, 0)
    right = np.array([[0.0, 0.3, 0.7, 0.45]], np.float32).repeat(2, 0)
    labels = smooth_labels({3: left, 9: right}, (2, 4), 0.5)
    np.testing.assert_array_equal(labels, [[3, 3, 9, 0], [3, 3, 9, 0]])
    assert labels.dtype == np.uint16


def test_smooth_masks_score_higher_than_the_grid_on_a_real_clip() -> None:
    """The shipped network on 16 frames of a held-aside DAVIS-2016 train sequence (soccerball, never trained
    on): the smooth masks' J is above the grid labels', the same tubes and ids otherwise."""
    from movseg_ros.datasets.davis import read_sequence
    from movseg_ros.pipeline import Pipeline, PipelineConfig

    folder = TRAIN / "soccerball"
    if not folder.is_dir():
        pytest.skip(f"DAVIS-2016 train not found at {folder}")
    seq = read_sequence(folder)
    scores = {}
    for smooth in (True, False):
        pipe = Pipeline(PipelineConfig.from_dict(
            {"pipeline": "stem_seg", "stem_seg": {"accelerator": "eager", "smooth_masks": smooth}}))
        out = []
        for i in range(16):
            out += pipe.process(seq.frame(i, (i + 1) * 33_333_333))
        out += pipe.finish()
        assert [o.frame.index for o in out] == list(range(16))
        js = []
        for o in out:
            truth = seq.labels(o.frame.index) > 0
            found = o.foreground()
            js.append(_iou(found, truth) if (found | truth).any() else 1.0)
        scores[smooth] = float(np.mean(js))
    assert scores[True] > scores[False] + 0.01, scores
