"""The deep visual memory (MemoryArch.deep): the encoder's stride-32 features beside strides 8 and 16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.visual_memory.data import MemoryRuns, RunAugment, SequenceInputs
from movseg_ros.visual_memory.network import MemoryArch, VisualMemoryNet, load_memory, save_memory
from memory_runs import tiny_memory_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DEEP = MemoryArch(appearance=8, state=8, deep=True)


def test_a_deep_memory_reads_stride_32_cells_from_its_window_top_left() -> None:
    """A window's inputs are the whole frame's inputs there (away from the window's edge, where upsampling
    clamps), so training on crops and running on whole frames see the same features."""
    torch.manual_seed(0)
    net = VisualMemoryNet(DEEP).eval()
    g = torch.Generator().manual_seed(1)
    s8, s16, s32 = torch.randn(1, 32, 12, 16, generator=g), torch.randn(1, 96, 6, 8, generator=g), torch.randn(1, 320, 3, 4, generator=g)
    motion = torch.rand(1, 1, 24, 32, generator=g)
    with torch.no_grad():
        whole = net.inputs(s8, s16, motion, s32)
        y, x, ch, cw = 4, 8, 6, 8
        window = net.inputs(s8[..., y:y + ch, x:x + cw], s16[..., y // 2:(y + ch) // 2, x // 2:(x + cw) // 2],
                            motion[..., 2 * y:2 * (y + ch), 2 * x:2 * (x + cw)],
                            s32[..., y // 4:(y + ch + 3) // 4, x // 4:(x + cw + 3) // 4])
        blind = net.inputs(s8, s16, motion, torch.zeros_like(s32))
    assert whole.shape == (1, 8 + 1, 12, 16)
    assert torch.allclose(window[..., 2:-1, 2:-1], whole[..., y + 2:y + ch - 1, x + 2:x + cw - 1], atol=1e-6)
    assert not torch.allclose(blind, whole, atol=1e-3)  # the stride-32 features count
    with pytest.raises(ValueError, match="stride-32"):
        net.inputs(s8, s16, motion)
    with pytest.raises(ValueError, match="do not cover"):
        net.inputs(s8, s16, motion, s32[..., :2, :])


def test_deep_crops_start_on_stride_32_cells_and_carry_the_cells_that_cover_them() -> None:
    n, h8, w8 = 3, 12, 16
    yy, xx = np.mgrid[0:h8, 0:w8]
    s8 = np.broadcast_to((100 * yy + xx).astype(np.float16), (n, 2, 32, h8, w8)).copy()
    s16 = np.zeros((n, 2, 96, h8 // 2, w8 // 2), np.float16)
    y32, x32 = np.mgrid[0:h8 // 4, 0:w8 // 4]
    s32 = np.broadcast_to((100 * y32 + x32).astype(np.float16), (n, 2, 320, h8 // 4, w8 // 4)).copy()
    s4 = np.zeros((n, 2, 24, 2 * h8, 2 * w8), np.float16)
    motion = np.zeros((n, 2, 1, 2 * h8, 2 * w8), np.float16)
    masks = np.zeros((n, 8 * h8, 8 * w8), bool)
    seq = SequenceInputs("s", s4, s8, s16, motion, masks, np.zeros((1, 2 * h8, 2 * w8), np.float16), s32)
    runs = MemoryRuns([seq], 2, 40, augment=RunAugment(stop=0.0, static_start=0.0, mirror=0.0), crop=(6, 6))
    corners = set()
    for i in range(40):
        item = runs[i]
        y, x = divmod(int(item["s8"][0, 0, 0, 0]), 100)
        corners.add((y, x))
        assert y % 4 == 0 and x % 4 == 0
        assert item["s32"].shape[-2:] == (2, 2)  # cells y/4 .. (y + 6 + 3)/4: 2 of them, covering 8 >= 6 cells
        assert int(item["s32"][0, 0, 0, 0]) == 100 * (y // 4) + x // 4
    assert len(corners) >= 4
    plain = MemoryRuns([SequenceInputs("s", s4, s8, s16, motion, masks, seq.still)], 2, 40,
                       augment=RunAugment(stop=0.0, static_start=0.0, mirror=0.0), crop=(6, 6))
    assert "s32" not in plain[0]
    assert any(int(plain[i]["s8"][0, 0, 0, 0]) // 100 % 4 == 2 for i in range(40))  # stride 16 alone: every 2 cells


def test_a_deep_memory_trains_on_its_own_cache_and_runs_in_the_pipeline(tmp_path: Path) -> None:
    scene = SceneConfig(width=160, height=120, frames=12)
    _, base = tiny_memory_run(tmp_path, scene)
    cache = tmp_path / "cache"
    assert main(base + ["--out-dir", str(tmp_path / "plain")]) == 0
    assert main(base + ["--out-dir", str(tmp_path / "deep"), "--set", "deep=true"]) == 0
    appearance = sorted(p.parent.name for p in (cache / "appearance").glob("*/a.npz"))
    assert len(appearance) == 2  # the deep cache beside the plain one, not over it
    with np.load(next(p for p in (cache / "appearance").glob("*/a.npz") if "s32" in np.load(p).files)) as z:
        assert z["s32"].shape[1:3] == (2, 320) and z["s32"].shape[-1] * 4 >= z["s8"].shape[-1]
    net, meta = load_memory(tmp_path / "deep" / "visual_memory.pt")
    assert net.arch.deep and meta["deep"] and len(net.encoder.blocks) == 18
    frames = [Frame(img, i * 33_333_333, "scene", i) for i, img in enumerate(make_scene(scene).frames[:4])]
    settings = {"weights": str(tmp_path / "deep" / "visual_memory.pt"), "mpnet_weights": str(tmp_path / "mp.pt")}
    config = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": settings})
    assert len([r for f in frames for r in Pipeline(config).segment(f)]) == 4
    assert len(Pipeline(config).run_offline(frames)) == 4
    shallow = VisualMemoryNet(MemoryArch(appearance=8, state=8))
    save_memory(tmp_path / "shallow.pt", shallow, {})
    assert not load_memory(tmp_path / "shallow.pt")[0].arch.deep and len(shallow.encoder.blocks) == 14
