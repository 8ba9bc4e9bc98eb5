"""Seed 004 network: shapes for any clip length and size, the mixing, gradients, a tiny fit, and its model files."""

from __future__ import annotations

import math

import pytest
import torch

from movseg_ros.model_files import ModelFileError, save_checkpoint
from movseg_ros.stem_seg.arch import StemSegArch
from movseg_ros.stem_seg.losses import clip_losses
from movseg_ros.stem_seg.mixing import FREE_STD, MIXINGS, coordinates, embedding_dims, free_mask
from movseg_ros.stem_seg.network import StemSegOutputs, build_stemseg, load_stemseg, save_stemseg, upsample_outputs
from movseg_ros.two_stream.arch import ArchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is steadier on a shared CPU
TINY = StemSegArch(fpn_channels=16, decoder_channels=(16, 16, 8, 8), gn_groups=4)


def _tiny(seed: int = 0, **changes: object):
    torch.manual_seed(seed)
    return build_stemseg(StemSegArch(**{**TINY.to_dict(), **changes}))


def _clip(b: int, t: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, t, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _squares_clip() -> tuple[torch.Tensor, torch.Tensor]:
    """Two flat-coloured squares moving in opposite directions over a flat background: (1, 3, 3, 48, 64), ids."""
    t_len, h, w = 3, 48, 64
    clip = torch.empty(1, t_len, 3, h, w)
    clip[:] = torch.tensor([0.4, 0.5, 0.45]).view(3, 1, 1)
    ids = torch.zeros(t_len, h, w, dtype=torch.long)
    for t in range(t_len):
        y, x = 8 + 2 * t, 6 + 4 * t
        clip[0, t, :, y:y + 14, x:x + 14] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
        ids[t, y:y + 14, x:x + 14] = 1
        y, x = 26 - 2 * t, 44 - 3 * t
        clip[0, t, :, y:y + 12, x:x + 12] = torch.tensor([0.1, 0.2, 0.9]).view(3, 1, 1)
        ids[t, y:y + 12, x:x + 12] = 2
    return clip, ids


@pytest.fixture(scope="module")
def tiny():
    return _tiny().eval()


@pytest.mark.parametrize("b,t,h,w", [(1, 1, 48, 64), (2, 3, 48, 64), (1, 4, 48, 64), (1, 3, 50, 70), (1, 4, 37, 61)])
def test_output_shapes_any_clip_length_and_size(tiny, b: int, t: int, h: int, w: int) -> None:
    with torch.no_grad():
        out = tiny(_clip(b, t, h, w))
    h4, w4 = math.ceil(h / 4), math.ceil(w / 4)
    e = embedding_dims(TINY.mixing)
    assert out["embeddings"].shape == (b, e, t, h4, w4)
    assert out["variances"].shape == (b, e, t, h4, w4)
    assert out["seediness"].shape == (b, t, h4, w4)


@pytest.mark.parametrize("mixing", MIXINGS)
def test_embedding_width_follows_the_mixing(mixing: str) -> None:
    with torch.no_grad():
        out = _tiny(mixing=mixing).eval()(_clip(1, 3, 48, 64))
    assert out["embeddings"].shape[1] == out["variances"].shape[1] == embedding_dims(mixing)


def test_variances_positive_free_dims_fixed_seediness_in_unit_range(tiny) -> None:
    with torch.no_grad():
        out = tiny(_clip(2, 3, 48, 64))
    free = free_mask(TINY.mixing)
    var = out["variances"]
    assert bool((var > 0).all()) and bool(torch.isfinite(var).all())
    assert torch.equal(var[:, free], torch.full_like(var[:, free], FREE_STD**2))
    assert float(var[:, ~free].std()) > 0  # the learned ones vary
    s = out["seediness"]
    assert float(s.min()) >= 0.0 and float(s.max()) <= 1.0 and float(s.std()) > 0


def test_zero_offsets_give_the_mixing_coordinates_of_the_output_grid() -> None:
    model = _tiny(mixing="xyt").eval()
    clip = _clip(1, 3, 50, 70)
    with torch.no_grad():
        before = model(clip)
        coords = coordinates("xyt", 3, 13, 18)
        assert not torch.allclose(before["embeddings"][0], coords, atol=1e-3)
        for head in (model.embedding_decoder.head, model.seediness_decoder.head):
            head.weight.zero_()
            head.bias.zero_()
        out = model(clip)
    assert torch.equal(out["embeddings"][0], coords)  # tanh(0) + coordinates, on the (T, H4, W4) grid
    assert torch.equal(out["variances"], torch.ones_like(out["variances"]))  # exp(0), no free dims in xyt
    assert torch.equal(out["seediness"], torch.full_like(out["seediness"], 0.5))


def test_upsample_outputs_to_input_size() -> None:
    model = _tiny(mixing="xytf").eval()
    with torch.no_grad():
        for head in (model.embedding_decoder.head,):
            head.weight.zero_()
            head.bias.zero_()
        out = model(_clip(1, 3, 48, 64))
    up = upsample_outputs(out, (48, 64))
    assert up["embeddings"].shape == up["variances"].shape == (1, 4, 3, 48, 64)
    assert up["seediness"].shape == (1, 3, 48, 64)
    # the stride-4 coordinates, interpolated, are the full-resolution ones up to a few pixels (x, y not swapped)
    full = coordinates("xytf", 3, 48, 64)
    assert float((up["embeddings"][0] - full).abs().max()) < 0.1
    free = free_mask("xytf")
    assert torch.allclose(up["variances"][:, free], torch.full_like(up["variances"][:, free], FREE_STD**2))
    assert float(up["seediness"].min()) >= 0.0 and float(up["seediness"].max()) <= 1.0
    with pytest.raises(ValueError, match="size"):
        upsample_outputs(out, (0, 64))


def test_backward_through_clip_losses_reaches_backbone_and_both_decoders() -> None:
    model = _tiny()
    clip, ids = _squares_clip()
    out = upsample_outputs(model(clip), (48, 64))
    losses = clip_losses(out["embeddings"][0], out["variances"][0], out["seediness"][0], ids)
    losses["total"].backward()
    parts = {
        "backbone body": model.backbone.body,
        "fpn": model.backbone.fpn,
        "embedding decoder squeeze": model.embedding_decoder.squeezes[0],
        "embedding decoder head": model.embedding_decoder.head,
        "seediness decoder squeeze": model.seediness_decoder.squeezes[0],
        "seediness decoder head": model.seediness_decoder.head,
    }
    for name, module in parts.items():
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), name
        assert all(bool(torch.isfinite(g).all()) for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_a_few_steps_fit_a_synthetic_clip() -> None:
    model = _tiny()
    clip, ids = _squares_clip()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    history = []
    for _ in range(20):
        out = upsample_outputs(model(clip), (48, 64))
        losses = clip_losses(out["embeddings"][0], out["variances"][0], out["seediness"][0], ids)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert last["total"] < 0.5 * first["total"], history
    assert last["embedding"] < 0.85 * first["embedding"], history  # not only the variance smoothness collapsing
    assert last["seediness"] < first["seediness"], history


def test_save_load_round_trip_fp32_exact_and_fp16_close(tmp_path, tiny) -> None:
    clip = _clip(1, 3, 48, 64)
    with torch.no_grad():
        ref = tiny(clip)
    path = save_stemseg(tmp_path / "fp32.pt", tiny, TINY, {"note": "test"}, half=False)
    loaded, meta = load_stemseg(path)
    assert not loaded.training and loaded.arch == TINY
    assert meta["note"] == "test" and meta["arch_settings"] == TINY.to_dict()
    with torch.no_grad():
        got = loaded(clip)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k

    half_path = save_stemseg(tmp_path / "fp16.pt", tiny, TINY, {}, half=True)
    raw = torch.load(half_path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    loaded16, meta16 = load_stemseg(half_path)
    assert meta16["stored_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded16.parameters())
    rounded = _tiny().eval()
    rounded.load_state_dict({k: v.half().float() for k, v in tiny.state_dict().items()})
    with torch.no_grad():
        got16, want16 = loaded16(clip), rounded(clip)
    for k in ref:
        assert torch.equal(got16[k], want16[k]), k  # exactly the fp16-rounded weights
        assert torch.allclose(got16[k], ref[k], rtol=2e-2, atol=2e-2), k


def test_loader_errors_name_the_file(tmp_path, tiny) -> None:
    with pytest.raises(ModelFileError, match="no such file") as e:
        load_stemseg(tmp_path / "missing.pt")
    assert "missing.pt" in str(e.value)

    good = save_stemseg(tmp_path / "good.pt", tiny, TINY, {}, half=False)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated") as e:
        load_stemseg(truncated)
    assert "truncated.pt" in str(e.value)

    other = save_checkpoint(tmp_path / "other.pt", "motion_mask_rcnn", tiny, {"arch_settings": TINY.to_dict()})
    with pytest.raises(ModelFileError, match="motion_mask_rcnn.*stemseg"):
        load_stemseg(other)

    plain = tmp_path / "plain.pt"
    torch.save(tiny.state_dict(), plain)
    with pytest.raises(ModelFileError, match="no architecture record"):
        load_stemseg(plain)

    no_record = save_checkpoint(tmp_path / "no_record.pt", "stemseg", tiny, {})
    with pytest.raises(ModelFileError, match="arch_settings"):
        load_stemseg(no_record)

    data = torch.load(good, weights_only=True)
    data["meta"]["arch_settings"]["decoder_channels"] = (16, 16, 8, 16)
    tampered = tmp_path / "tampered.pt"
    torch.save(data, tampered)
    with pytest.raises(ModelFileError, match="shape") as e:
        load_stemseg(tampered)
    assert "tampered.pt" in str(e.value)

    data["meta"]["arch_settings"] = {**TINY.to_dict(), "mixing": "xyz"}
    torch.save(data, tampered)
    with pytest.raises(ModelFileError, match="bad architecture record.*mixing"):
        load_stemseg(tampered)


def test_save_refuses_settings_the_model_was_not_built_with(tmp_path, tiny) -> None:
    with pytest.raises(ValueError, match="built with"):
        save_stemseg(tmp_path / "x.pt", tiny, StemSegArch(), {})


def test_arch_round_trip_and_errors_name_the_setting() -> None:
    assert StemSegArch.from_dict(TINY.to_dict()) == TINY
    as_lists = {**TINY.to_dict(), "decoder_channels": [16, 16, 8, 8], "temporal_pools": [2, 1, 1, 0]}
    assert StemSegArch.from_dict(as_lists).temporal_pools == (2, 1, 1, 0)
    with pytest.raises(ArchError, match="unknown.*'width'"):
        StemSegArch.from_dict({**TINY.to_dict(), "width": 3})
    bad = {
        "mixing": ("xyz", "mixing"),
        "backbone": ("vgg", "backbone"),
        "fpn_channels": (12, "fpn_channels"),
        "decoder_channels": ((16, 16, 8, 6), "decoder_channels"),
        "temporal_pools": ((1, 2, 1, 0), "temporal_pools"),
        "gn_groups": (0, "gn_groups"),
        "free_std": (0.0, "free_std"),
    }
    for field, (value, word) in bad.items():
        with pytest.raises(ArchError, match=word):
            StemSegArch(**{**TINY.to_dict(), field: value})
    with pytest.raises(ArchError, match="temporal_pools"):
        StemSegArch(temporal_pools=(3, 2, 1))  # type: ignore[arg-type]


def test_tuple_wrapper_gives_the_same_outputs(tiny) -> None:
    clip = _clip(1, 3, 48, 64)
    with torch.no_grad():
        out = tiny(clip)
        as_tuple = StemSegOutputs(tiny)(clip)
    assert [tuple(t.shape) for t in as_tuple] == [tuple(out[k].shape) for k in ("embeddings", "variances", "seediness")]
    for got, key in zip(as_tuple, ("embeddings", "variances", "seediness")):
        assert torch.equal(got, out[key]), key


def test_bad_clip_shape_is_refused(tiny) -> None:
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        tiny(torch.rand(1, 3, 48, 64))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        tiny(torch.rand(1, 2, 1, 48, 64))


def test_default_model_is_small(tmp_path) -> None:
    arch = StemSegArch()
    model = build_stemseg(arch)
    assert sum(p.numel() for p in model.parameters()) < 8_000_000
    path = save_stemseg(tmp_path / "default.pt", model, arch, {})
    assert path.stat().st_size <= 30 * 1024 * 1024
