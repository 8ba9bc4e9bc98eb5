"""Seed 004 losses: the Lovász hinge against the Lovász extension's definition, the Gaussian, the clip losses."""

from __future__ import annotations

import math

import pytest
import torch

from movseg_ros.stem_seg.losses import clip_losses, gaussian_probability, lovasz_hinge, probability_logits


def _jaccard_loss(mispredicted: set[int], labels: list[int]) -> float:
    """Delta_J(M) = |M| / |{y = 1} U M| (Berman et al.), 0 for the empty set."""
    positives = {i for i, y in enumerate(labels) if y == 1}
    union = positives | mispredicted
    return len(mispredicted) / len(union) if union else 0.0


def _lovasz_by_level_sets(errors: list[float], labels: list[int]) -> float:
    """Lovász extension as a Choquet integral: sum over levels of (step) * Delta_J({i : relu(error_i) >= level})."""
    m = [max(0.0, e) for e in errors]
    levels = sorted(set(v for v in m if v > 0))
    total, previous = 0.0, 0.0
    for level in levels:
        total += (level - previous) * _jaccard_loss({i for i, v in enumerate(m) if v >= level}, labels)
        previous = level
    return total


def test_lovasz_hinge_matches_the_extension_definition_on_random_small_cases() -> None:
    g = torch.Generator().manual_seed(3)
    for n in range(1, 9):
        for _ in range(6):
            logits = torch.randn(n, generator=g, dtype=torch.float64) * 1.5
            labels = (torch.rand(n, generator=g) > 0.5).long()
            errors = (1 - logits * (2 * labels - 1)).tolist()
            expected = _lovasz_by_level_sets(errors, labels.tolist())
            assert float(lovasz_hinge(logits, labels)) == pytest.approx(expected, abs=1e-9)


def test_lovasz_hinge_of_binary_predictions_is_twice_the_jaccard_loss() -> None:
    # logits +-1 give errors 0 (right) or 2 (wrong): the extension at 2 * 1_M is 2 * Delta_J(M)
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    predicted = [1, 0, 1, 1, 0, 0, 0, 0]  # two false negatives (1, 6), one false positive (3)
    logits = torch.tensor([1.0 if p else -1.0 for p in predicted])
    wrong = {i for i, (p, y) in enumerate(zip(predicted, labels)) if p != y}
    got = float(lovasz_hinge(logits, torch.tensor(labels)))
    assert got == pytest.approx(2 * _jaccard_loss(wrong, labels))
    assert got == pytest.approx(2 * (1 - 2 / 5))  # 1 - IoU: intersection 2, union 5


def test_lovasz_hinge_perfect_is_zero_and_correcting_a_pixel_lowers_it() -> None:
    labels = torch.tensor([1, 1, 0, 0, 1, 0])
    perfect = torch.tensor([1.0, 2.0, -1.0, -3.0, 1.5, -1.0])
    assert float(lovasz_hinge(perfect, labels)) == 0.0
    wrong = perfect.clone()
    wrong[1] = -0.8
    wrong[3] = 0.6
    before = float(lovasz_hinge(wrong, labels))
    fixed = wrong.clone()
    fixed[3] = -0.2  # the false positive moves to the right side
    assert 0 < float(lovasz_hinge(fixed, labels)) < before


def test_lovasz_hinge_gradients_are_finite_and_point_the_right_way() -> None:
    labels = torch.tensor([1, 0, 1, 0, 0])
    logits = torch.tensor([-0.5, 0.3, 0.2, -0.1, 0.9], requires_grad=True)
    lovasz_hinge(logits, labels).backward()
    grad = logits.grad
    assert grad is not None and torch.all(torch.isfinite(grad))
    assert float(grad[0]) < 0 and float(grad[2]) < 0  # raise the positives' logits
    assert float(grad[1]) > 0 and float(grad[4]) > 0  # lower the negatives'


def test_gaussian_is_one_at_the_mean_and_exp_minus_half_one_std_away() -> None:
    mean = torch.tensor([0.2, -0.1, 0.5])
    var = torch.tensor([0.04, 0.25, 0.09])
    emb = torch.stack([mean, mean + torch.tensor([0.0, 0.5, 0.0]), mean + torch.tensor([0.2, 0.0, 0.3])], dim=1)
    p = gaussian_probability(emb, mean, var)
    assert p.tolist() == pytest.approx([1.0, math.exp(-0.5), math.exp(-1.0)])
    assert float(probability_logits(torch.tensor(0.5))) == 0.0
    with pytest.raises(ValueError, match="gaussian_probability"):
        gaussian_probability(emb, mean[:2], var)


def _two_instance_clip() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(E=2, T=2, 6x8) embeddings at two well separated centres, background far away; instance ids."""
    inst = torch.zeros(2, 6, 8, dtype=torch.long)
    inst[:, 1:4, 1:4] = 1
    inst[:, 2:5, 5:8] = 2
    centres = {0: (3.0, 3.0), 1: (-0.5, -0.5), 2: (0.5, 0.5)}
    emb = torch.zeros(2, 2, 6, 8)
    for k, (cx, cy) in centres.items():
        emb[0][inst == k] = cx
        emb[1][inst == k] = cy
    g = torch.Generator().manual_seed(1)
    emb = emb + 0.02 * torch.randn(emb.shape, generator=g)
    return emb, torch.full_like(emb, 0.05), inst


def test_separated_embeddings_give_a_lower_embedding_loss_than_shuffled_ones() -> None:
    emb, var, inst = _two_instance_clip()
    seediness = torch.zeros(inst.shape)
    good = clip_losses(emb, var, seediness, inst)
    g = torch.Generator().manual_seed(2)
    flat = emb.reshape(2, -1)
    shuffled = flat[:, torch.randperm(flat.shape[1], generator=g)].reshape(emb.shape)
    bad = clip_losses(shuffled, var, seediness, inst)
    assert float(good["embedding"]) < 0.1
    assert float(bad["embedding"]) > float(good["embedding"]) + 0.5
    assert float(good["smoothness"]) == pytest.approx(0.0, abs=1e-12)  # constant variances
    assert set(good) == {"embedding", "smoothness", "seediness", "total"}


def test_smoothness_and_seediness_and_total_weights() -> None:
    emb, var, inst = _two_instance_clip()
    var = var.clone()
    var[0][inst == 1] = torch.linspace(0.01, 0.09, int((inst == 1).sum()))
    # a heat map that equals the targets except on background, where it is 0.5
    out_zero = clip_losses(emb, var, torch.zeros(inst.shape), inst)
    assert float(out_zero["smoothness"]) > 0
    fg = (inst > 0).float()
    seediness = 0.5 * (1 - fg)
    out = clip_losses(emb, var, seediness, inst, embedding_weight=2.0, smoothness_weight=3.0, seediness_weight=4.0)
    # foreground targets are p <= 1 so the zero heat map has a positive foreground error; the 0.5 background adds
    # 0.25, its own mean: foreground and background are averaged separately (balanced)
    background_part = 0.25
    assert float(out["seediness"]) == pytest.approx(float(out_zero["seediness"]) + background_part, rel=1e-5)
    expected_total = 2 * out["embedding"] + 3 * out["smoothness"] + 4 * out["seediness"]
    assert float(out["total"]) == pytest.approx(float(expected_total))


def test_seediness_target_is_each_pixels_own_instance_probability() -> None:
    emb, var, inst = _two_instance_clip()
    e = emb.reshape(2, -1)
    ids = inst.reshape(-1)
    target = torch.zeros(ids.shape)
    for k in (1, 2):
        inside = ids == k
        p = gaussian_probability(e, e[:, inside].mean(1), var.reshape(2, -1)[:, inside].mean(1))
        target[inside] = p[inside]
    out = clip_losses(emb, var, target.reshape(inst.shape), inst)
    assert float(out["seediness"]) == pytest.approx(0.0, abs=1e-12)
    assert float(clip_losses(emb, var, torch.zeros(inst.shape), inst)["seediness"]) > 0.1


def test_clip_without_instances_has_only_the_seediness_term() -> None:
    emb = torch.randn(3, 2, 4, 5, requires_grad=True)
    var = torch.full((3, 2, 4, 5), 0.1, requires_grad=True)
    seediness = torch.full((2, 4, 5), 0.3, requires_grad=True)
    out = clip_losses(emb, var, seediness, torch.zeros(2, 4, 5, dtype=torch.long))
    assert out["embedding"].item() == 0.0 and out["smoothness"].item() == 0.0
    assert out["seediness"].item() == pytest.approx(0.09)
    out["total"].backward()
    assert seediness.grad is not None and torch.all(seediness.grad > 0)


def test_gradients_flow_to_all_outputs_and_ignored_pixels_do_not_count() -> None:
    emb, var, inst = _two_instance_clip()
    emb = (emb + 0.1 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(5))).requires_grad_(True)
    var = var.clone().requires_grad_(True)
    seediness = torch.full(inst.shape, 0.2, requires_grad=True)
    out = clip_losses(emb, var, seediness, inst)
    out["total"].backward()
    for t in (emb, var, seediness):
        assert t.grad is not None and torch.all(torch.isfinite(t.grad)) and float(t.grad.abs().sum()) > 0

    ignore = torch.zeros(inst.shape, dtype=torch.bool)
    ignore[:, 0, :] = True  # a background row
    changed = seediness.detach().clone()
    changed[ignore] = 0.9
    a = clip_losses(emb.detach(), var.detach(), seediness.detach(), inst, ignore=ignore)
    b = clip_losses(emb.detach(), var.detach(), changed, inst, ignore=ignore)
    assert float(a["total"]) == pytest.approx(float(b["total"]))
    c = clip_losses(emb.detach(), var.detach(), changed, inst)
    assert float(c["seediness"]) > float(a["seediness"])
    with pytest.raises(ValueError, match="instances"):
        clip_losses(emb, var, seediness, inst[:1])


def test_seediness_balances_a_small_object_against_the_background() -> None:
    """A 2x2 object in a 20x20 frame: an all-zero heat map must still cost about the object's own error
    (foreground and background are averaged separately), not 1 % of it as a plain pixel mean would."""
    inst = torch.zeros(1, 20, 20, dtype=torch.long)
    inst[0, 5:7, 5:7] = 1
    emb = torch.zeros(4, 1, 20, 20)
    emb[0] = torch.linspace(-1, 1, 20)[None, None, :]  # x
    emb[1] = torch.linspace(-1, 1, 20)[None, :, None]  # y
    var = torch.full((4, 1, 20, 20), 0.01)
    out = clip_losses(emb, var, torch.zeros(1, 20, 20), inst)
    assert float(out["seediness"]) > 0.5
    heat = torch.zeros(1, 20, 20)
    heat[inst > 0] = 1.0
    assert float(clip_losses(emb, var, heat, inst)["seediness"]) < 0.1
