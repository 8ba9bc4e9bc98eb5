"""STEm-Seg's smooth masks: tube probabilities upsampled bilinearly place an edge between the output's cells,
where the output grid's labels upsampled nearest can only put it on a cell border."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.segmenters.stem_seg import smooth_labels

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN = Path(os.environ.get("MOVSEG_DAVIS_TRAIN", Path(__file__).resolve().parents[2] / "shared/data/davis2016-train"))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_a_disc_is_recovered_from_a_coarse_probability_better_than_from_coarse_labels() -> None:
    """A disc's soft coverage on a grid 8x coarser: the smooth mask at full size matches the disc closely;
    the coarse labels, upsampled nearest, give a blocky disc."""
    size, factor = 256, 8
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (xx - 121.3) ** 2 + (yy - 133.7) ** 2 <= 61.5 ** 2
    coarse = cv2.resize(disc.astype(np.float32), (size // factor,) * 2, interpolation=cv2.INTER_AREA)
    smooth = smooth_labels({7: coarse}, (size, size), 0.5)
    blocky = cv2.resize((coarse > 0.5).astype(np.uint16) * 7, (size, size), interpolation=cv2.INTER_NEAREST)
    assert set(np.unique(smooth)) == {0, 7}
    assert _iou(smooth == 7, disc) > 0.985 and _iou(smooth == 7, disc) > _iou(blocky == 7, disc) + 0.01


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
