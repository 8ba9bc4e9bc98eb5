"""Seed 004 clustering: hand-made embeddings, variances and heat maps are turned back into their instance tubes."""

from __future__ import annotations

import pytest
import torch

from movseg_ros.stem_seg.clustering import ClusterConfig, Clusters, cluster
from movseg_ros.stem_seg.mixing import coordinates

T, H, W = 3, 12, 16
# (x, y, t) embedding centres and heat-map peaks of three objects; object 3 appears only in frames 1-2
CENTRES = {1: (-0.6, -0.5, 0.0), 2: (0.7, 0.2, 0.0), 3: (0.0, 0.6, 0.05)}
PEAKS = {1: 0.95, 2: 0.9, 3: 0.85}


def _truth() -> torch.Tensor:
    inst = torch.zeros(T, H, W, dtype=torch.long)
    inst[:, 1:5, 1:6] = 1
    for t in range(T):
        inst[t, 5:10, 9 + t : 14 + t] = 2  # moves right one pixel a frame
    inst[1:, 8:11, 2:7] = 3  # starts late
    return inst


def _clip(noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    inst = _truth()
    g = torch.Generator().manual_seed(seed)
    emb = coordinates("xyt", T, H, W) + 3.0  # background: pixel coordinates pushed far from every centre
    var = torch.full((3, T, H, W), 0.01)
    heat = 0.1 * torch.rand(T, H, W, generator=g)
    for k, centre in CENTRES.items():
        inside = inst == k
        for d in range(3):
            emb[d][inside] = centre[d]
        n = int(inside.sum())
        # heat decays from the peak at the tube's first pixel
        heat[inside] = PEAKS[k] * torch.linspace(1.0, 0.7, n)
    emb = emb + noise * torch.randn(emb.shape, generator=g)
    return emb, var, heat, inst


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_recovers_three_tubes_exactly_in_heat_order() -> None:
    emb, var, heat, inst = _clip(noise=0.0)
    out = cluster(emb, var, heat, ClusterConfig())
    assert isinstance(out, Clusters)
    assert out.ids.dtype == torch.int64 and out.ids.shape == (T, H, W)
    assert torch.equal(out.ids, inst)  # ids found in order of the seeds' heat: 1, 2, 3
    assert out.scores == pytest.approx([PEAKS[1], PEAKS[2], PEAKS[3]])
    assert not bool((out.ids[0] == 3).any())  # the late tube stays out of frame 0


def test_recovers_tubes_with_noise() -> None:
    emb, var, heat, inst = _clip(noise=0.02, seed=4)
    out = cluster(emb, var, heat)
    assert len(out.scores) == 3
    for k in CENTRES:
        assert _iou(out.ids == k, inst == k) > 0.95


def test_max_instances_caps_the_count() -> None:
    emb, var, heat, inst = _clip(noise=0.0)
    out = cluster(emb, var, heat, ClusterConfig(max_instances=2))
    assert len(out.scores) == 2
    assert set(out.ids.unique().tolist()) == {0, 1, 2}
    assert torch.equal(out.ids == 2, inst == 2)


def test_heat_below_threshold_everywhere_gives_no_instance() -> None:
    emb, var, heat, _ = _clip(noise=0.0)
    out = cluster(emb, var, heat * 0.5, ClusterConfig(seed_threshold=0.5))
    assert out.scores == [] and int(out.ids.abs().sum()) == 0


def test_empty_or_small_tubes_are_skipped_without_looping_forever() -> None:
    emb, var, heat, inst = _clip(noise=0.0)
    seed = int(torch.argmax(heat))
    var.view(3, -1)[:, seed] = 0.0  # 0/0 at the seed: p is NaN there and 0 elsewhere, so its tube is empty
    heat.view(-1)[seed] = 1.0
    out = cluster(emb, var, heat)
    second = PEAKS[1] * float(torch.linspace(1.0, 0.7, int((inst == 1).sum()))[1])  # next pixel of object 1
    assert out.scores == pytest.approx([second, PEAKS[2], PEAKS[3]])
    assert int(out.ids.view(-1)[seed]) == 0  # the bad seed stays background; the rest of object 1 is found
    assert _iou(out.ids == 1, inst == 1) > 0.95

    too_big = int((inst > 0).sum())
    none = cluster(emb, var, torch.ones(T, H, W), ClusterConfig(seed_threshold=0.0, min_pixels=too_big))
    assert none.scores == [] and int(none.ids.abs().sum()) == 0


def test_lone_peak_on_a_weak_tube_is_dropped_by_mean_seediness() -> None:
    emb, var, heat, inst = _clip(noise=0.0)
    two = inst == 2
    heat[two] = 0.2  # object 2: a weak region under one strong peak
    heat.view(-1)[int(torch.nonzero(two.view(-1))[0])] = 0.97
    kept = cluster(emb, var, heat, ClusterConfig())
    assert len(kept.scores) == 3 and kept.scores[0] == pytest.approx(0.97)  # by its peak, the weak tube comes first
    assert torch.equal(kept.ids == 1, two)

    out = cluster(emb, var, heat, ClusterConfig(min_tube_seediness=0.5))
    assert out.scores == pytest.approx([PEAKS[1], PEAKS[3]])  # means: 0.95 * 0.85 and 0.85 * 0.85
    assert torch.equal(out.ids == 1, inst == 1) and torch.equal(out.ids == 2, inst == 3)
    assert not bool(out.ids[two].any())  # the dropped tube's pixels are background, not claimed by another tube
    assert len(out.probabilities) == 2

    strict = cluster(emb, var, heat, ClusterConfig(min_tube_seediness=0.75))  # between object 1's and 3's means
    assert strict.scores == pytest.approx([PEAKS[1]])


def test_mask_limits_clustering() -> None:
    emb, var, heat, inst = _clip(noise=0.0)
    mask = torch.ones(T, H, W, dtype=torch.bool)
    mask[:, :, :8] = False  # left half out: object 1 and 3 vanish, object 2 stays
    out = cluster(emb, var, heat, mask=mask)
    assert len(out.scores) == 1
    assert torch.equal(out.ids == 1, inst == 2)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"seed_threshold": 1.5}, "seed_threshold"),
        ({"min_tube_seediness": -0.1}, "min_tube_seediness"),
        ({"mask_threshold": 0.0}, "mask_threshold"),
        ({"max_instances": 0}, "max_instances"),
        ({"min_pixels": 0}, "min_pixels"),
    ],
)
def test_config_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ClusterConfig(**kwargs)


def test_shape_mismatch_is_reported() -> None:
    emb, var, heat, _ = _clip(noise=0.0)
    with pytest.raises(ValueError, match="seediness"):
        cluster(emb, var, heat[:2])


def test_probabilities_give_back_the_ids_and_stay_off_other_tubes() -> None:
    """Each tube's probability map is zero where another tube claimed the pixel, and the most probable tube
    above mask_threshold on the output grid is the clustering's own label map (the smooth masks' anchor)."""
    from movseg_ros.segmenters.stem_seg import smooth_labels

    emb, var, heat, _ = _clip(noise=0.02, seed=4)
    out = cluster(emb, var, heat, ClusterConfig(mask_threshold=0.5))
    assert len(out.probabilities) == len(out.scores) == 3
    for k, p in enumerate(out.probabilities, start=1):
        assert p.shape == (T, H, W)
        assert bool((p[(out.ids != 0) & (out.ids != k)] == 0).all())
        assert bool((p[out.ids == k] > 0.5).all())
    for t in range(T):
        maps = {k: p[t].numpy() for k, p in enumerate(out.probabilities, start=1)}
        labels = smooth_labels(maps, (H, W), 0.5)
        assert (labels == out.ids[t].numpy()).all()
