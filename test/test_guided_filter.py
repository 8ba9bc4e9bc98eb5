"""The guided filter: the fast form follows the exact one and snaps a blurred mask to the image's edge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from movseg_ros.guided_filter import guided_filter


def edge_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright square on a dark, noisy ground; a probability map blurred 6 px past its edges; its truth."""
    rng = np.random.default_rng(0)
    truth = np.zeros((120, 160), bool)
    truth[30:90, 40:120] = True
    guide = np.where(truth, 0.8, 0.2).astype(np.float32) + rng.normal(0, 0.02, truth.shape).astype(np.float32)
    prob = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 6)
    return guide, prob, truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_the_fast_form_follows_the_exact_filter_and_both_snap_to_the_edge() -> None:
    guide, prob, truth = edge_scene()
    exact = guided_filter(guide, prob, 8, 0.002)
    fast = guided_filter(guide, prob, 8, 0.002, subsample=2)
    assert fast.shape == exact.shape and fast.dtype == np.float32
    assert np.abs(fast - exact).mean() < 0.01
    # the blurred map's half-level contour is rounded at the corners; filtered, the mask is the square
    assert iou(exact > 0.5, truth) > 0.995 and iou(fast > 0.5, truth) > 0.995
    assert iou(prob > 0.5, truth) < 0.98


def test_a_bad_subsample_is_refused() -> None:
    guide, prob, _ = edge_scene()
    with pytest.raises(ValueError, match="subsample must be >= 1, got 0"):
        guided_filter(guide, prob, 8, 0.002, subsample=0)
