"""Seed 004 mixing functions: coordinate ranges, tanh offsets, free dimensions and the variance convention."""

from __future__ import annotations

import math

import pytest
import torch

from movseg_ros.stem_seg.mixing import (
    FREE_STD,
    MIXINGS,
    coordinates,
    embedding_dims,
    free_mask,
    full_variances,
    mix,
    predicted_dims,
)


def test_dims_and_free_mask() -> None:
    assert [embedding_dims(m) for m in MIXINGS] == [2, 3, 4, 4]
    assert free_mask("xy").tolist() == [False, False]
    assert free_mask("xyt").tolist() == [False, False, False]
    assert free_mask("xyff").tolist() == [False, False, True, True]
    assert free_mask("xytf").tolist() == [False, False, False, True]
    assert [predicted_dims(m) for m in MIXINGS] == [2, 3, 2, 3]


def test_unknown_mixing_is_named() -> None:
    with pytest.raises(ValueError, match="xyz"):
        embedding_dims("xyz")


def test_coordinates_landscape_scale_x_by_aspect_ratio() -> None:
    c = coordinates("xytf", 3, 4, 8)  # W = 2 H: y spans [-1, 1], x spans [-2, 2]
    assert c.shape == (4, 3, 4, 8)
    x, y, t, f = c
    assert x[0, 0].tolist() == pytest.approx(torch.linspace(-2, 2, 8).tolist())
    assert float(x.min()) == pytest.approx(-2.0) and float(x.max()) == pytest.approx(2.0)
    assert float(y.min()) == pytest.approx(-1.0) and float(y.max()) == pytest.approx(1.0)
    assert torch.all(y[:, :, 0:1] == y)  # y constant along a row
    assert t[:, 0, 0].tolist() == pytest.approx([-0.1, 0.0, 0.1])
    assert torch.all(f == 0)


def test_coordinates_portrait_scale_y_and_single_frame_has_t_zero() -> None:
    x, y, t = coordinates("xyt", 1, 9, 3)  # H = 3 W: x spans [-1, 1], y spans [-3, 3]
    assert float(x.min()) == pytest.approx(-1.0) and float(x.max()) == pytest.approx(1.0)
    assert float(y.min()) == pytest.approx(-3.0) and float(y.max()) == pytest.approx(3.0)
    assert torch.all(t == 0)


def test_mix_is_tanh_of_offsets_plus_coordinates() -> None:
    g = torch.Generator().manual_seed(0)
    offsets = torch.randn(4, 2, 3, 5, generator=g) * 3
    e = mix(offsets, "xyff")
    coords = coordinates("xyff", 2, 3, 5)
    assert torch.allclose(e, torch.tanh(offsets) + coords)
    assert torch.allclose(mix(torch.zeros(4, 2, 3, 5), "xyff"), coords)
    assert float((e - coords).abs().max()) <= 1.0  # offsets bounded by tanh
    with pytest.raises(ValueError, match="xyt"):
        mix(offsets, "xyt")  # 4 channels for a 3-dim mixing


def test_full_variances_are_exp_of_log_variance_and_free_dims_fixed() -> None:
    raw = torch.tensor([math.log(0.04), math.log(0.25)]).view(2, 1, 1, 1).expand(2, 2, 3, 3).clone()
    raw.requires_grad_(True)
    v = full_variances(raw, "xyff")
    assert v.shape == (4, 2, 3, 3)
    assert torch.allclose(v[0], torch.full((2, 3, 3), 0.04))
    assert torch.allclose(v[1], torch.full((2, 3, 3), 0.25))
    assert torch.allclose(v[2:], torch.full((2, 2, 3, 3), FREE_STD**2))
    v.sum().backward()
    assert raw.grad is not None and torch.all(raw.grad > 0)


def test_full_variances_accepts_all_channels_and_ignores_free_ones() -> None:
    raw = torch.zeros(4, 1, 2, 2)
    raw[3] = 5.0  # the free channel of xytf: ignored
    v = full_variances(raw, "xytf")
    assert torch.allclose(v[:3], torch.ones(3, 1, 2, 2))
    assert torch.allclose(v[3], torch.full((1, 2, 2), FREE_STD**2))
    assert torch.all(full_variances(torch.full((2, 1, 2, 2), -1e4), "xy") > 0)  # clamped, stays positive
    with pytest.raises(ValueError, match="xyt"):
        full_variances(torch.zeros(1, 1, 2, 2), "xyt")
