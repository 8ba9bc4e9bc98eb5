"""RAFT's sequence loss and the EPE against hand computations on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from movseg_ros.learned_flow.loss import end_point_error, sequence_loss


def _target() -> torch.Tensor:
    # one image, 2x2 pixels; x then y
    return torch.tensor([[[[1.0, 0.0], [2.0, -1.0]], [[0.0, 3.0], [0.0, 1.0]]]])


def test_sequence_loss_weights_later_predictions_more() -> None:
    t = _target()
    p0 = torch.zeros_like(t)  # |error| summed over x,y per pixel: 1, 3, 2, 2 -> mean 2.0
    p1 = t + 0.5  # 1.0 at every pixel -> mean 1.0
    p2 = t.clone()  # 0
    got = sequence_loss([p0, p1, p2], t, gamma=0.8, max_flow=400.0)
    assert float(got) == pytest.approx(0.8 ** 2 * 2.0 + 0.8 * 1.0 + 0.0)
    reversed_order = sequence_loss([p2, p1, p0], t, gamma=0.8, max_flow=400.0)
    assert float(reversed_order) == pytest.approx(0.8 ** 2 * 0.0 + 0.8 * 1.0 + 2.0)


def test_sequence_loss_leaves_out_flow_longer_than_max_flow() -> None:
    t = _target()  # magnitudes 1, 3, 2, sqrt(2)
    p = torch.zeros_like(t)
    got = sequence_loss([p], t, gamma=0.8, max_flow=2.5)  # the 3-px pixel is left out: (1 + 2 + 2) / 3
    assert float(got) == pytest.approx(5.0 / 3.0)


def test_sequence_loss_has_gradients_and_needs_predictions() -> None:
    t = _target()
    p = torch.zeros_like(t, requires_grad=True)
    sequence_loss([p], t).backward()
    assert p.grad is not None and float(p.grad.abs().sum()) > 0
    with pytest.raises(ValueError):
        sequence_loss([], t)


def test_end_point_error_is_the_mean_euclidean_distance() -> None:
    t = _target()
    p = torch.zeros_like(t)
    expected = (1.0 + 3.0 + 2.0 + 2.0 ** 0.5) / 4
    assert float(end_point_error(p, t)) == pytest.approx(expected)
    assert float(end_point_error(t, t)) == 0.0
