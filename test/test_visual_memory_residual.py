"""The visual memory's second motion input, the camera-compensated residual: what the map says about a
panning camera and a mover, how it is cached and read back, trained and run by the segmenter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.datasets.errors import DatasetError
from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.visual_memory.data import load_inputs, save_arrays
from movseg_ros.visual_memory.network import MemoryArch, VisualMemoryNet, load_memory, save_memory
from movseg_ros.visual_memory.residual import residual_map, stride4
from memory_runs import tiny_memory_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = Path(__file__).resolve().parent.parent / "config"


def _camera_flow(h: int, w: int) -> np.ndarray:
    """Where each pixel heads under a camera that pans and zooms (a homography's flow)."""
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([2.5 + 0.01 * (gx - w / 2), -1.0 + 0.01 * (gy - h / 2)], -1).astype(np.float32)


def test_the_residual_ignores_the_camera_and_finds_the_mover() -> None:
    h, w = 120, 161
    flow = _camera_flow(h, w)
    still_scene = residual_map(flow)
    assert still_scene.shape == stride4((h, w)) == (30, 41) and still_scene.max() < 0.2
    flow[40:80, 60:100] += np.array([-3.0, 2.0], np.float32)  # an object moving against the camera
    moving = residual_map(flow)
    assert moving[12:18, 17:23].min() > 0.7  # inside the mover, in stride-4 cells
    assert np.median(moving[:8]) < 0.2 and np.median(moving[-8:]) < 0.2  # the background stays low
    assert residual_map(np.zeros((h, w, 2), np.float32)).max() == pytest.approx(0.0, abs=1e-6)


def test_cached_residual_maps_are_a_second_motion_channel_and_a_mismatch_is_named(tmp_path: Path) -> None:
    n, h4, w4 = 3, 4, 6
    rng = np.random.default_rng(0)
    save_arrays(tmp_path / "app.npz", {"s4": rng.random((n, 2, 24, 4, 6)).astype(np.float16), "s8": rng.random((n, 2, 32, 2, 3)).astype(np.float16),
                                       "s16": rng.random((n, 2, 96, 1, 2)).astype(np.float16),
                                       "masks": np.zeros((n, 16, 24), bool)})
    motion = rng.random((n, 2, 1, h4, w4)).astype(np.float16)
    save_arrays(tmp_path / "mot.npz", {"motion": motion, "still": np.full((1, h4, w4), 0.3, np.float16)})
    residual = rng.random((n, 2, 1, h4, w4)).astype(np.float16)
    save_arrays(tmp_path / "res.npz", {"residual": residual})
    plain = load_inputs(tmp_path / "app.npz", tmp_path / "mot.npz", "s")
    both = load_inputs(tmp_path / "app.npz", tmp_path / "mot.npz", "s", tmp_path / "res.npz")
    assert plain.motion.shape == (n, 2, 1, h4, w4) and both.motion.shape == (n, 2, 2, h4, w4)
    assert np.array_equal(both.motion[:, :, 0], motion[:, :, 0]) and np.array_equal(both.motion[:, :, 1], residual[:, :, 0])
    assert both.still.shape == (2, h4, w4) and (both.still[0] == np.float16(0.3)).all() and (both.still[1] == 0).all()
    save_arrays(tmp_path / "short.npz", {"residual": residual[:2]})
    with pytest.raises(DatasetError, match="short.npz"):
        load_inputs(tmp_path / "app.npz", tmp_path / "mot.npz", "s", tmp_path / "short.npz")


def test_a_memory_reads_the_motion_maps_its_arch_names() -> None:
    net = VisualMemoryNet(MemoryArch(appearance=8, state=8, residual=True)).eval()
    s8, s16 = torch.rand(1, 32, 3, 4), torch.rand(1, 96, 2, 2)
    assert net.inputs(s8, s16, torch.rand(1, 2, 6, 8)).shape == (1, 10, 3, 4)
    with pytest.raises(ValueError, match="reads 2 motion map"):
        net.inputs(s8, s16, torch.rand(1, 1, 6, 8))
    assert VisualMemoryNet(MemoryArch(appearance=8, state=8)).gru.input_gates.in_channels == 9
    torch.manual_seed(0)
    dropping = VisualMemoryNet(MemoryArch(appearance=8, state=8, residual=True, dropout=0.5))
    motion = torch.rand(1, 2, 6, 8)
    dropped = dropping.train().inputs(s8, s16, motion)[0, :8]
    assert (dropped.flatten(1).abs().sum(1) == 0).any()  # whole appearance channels dropped in training only
    assert torch.equal(dropping.eval().inputs(s8, s16, motion), dropping.inputs(s8, s16, motion))
    with pytest.raises(ValueError, match="dropout"):
        MemoryArch(dropout=1.0)


@pytest.mark.timeout(240)
def test_training_with_the_residual_records_it_and_the_segmenter_feeds_it(tmp_path: Path) -> None:
    scene = SceneConfig(width=160, height=120, frames=12)
    data, base = tiny_memory_run(tmp_path, scene)
    base += ["--set", "residual=true", "--set", "dropout=0.5"]
    cache = tmp_path / "cache"
    assert main(base + ["--out-dir", str(tmp_path / "run")]) == 0
    assert main(base + ["--out-dir", str(tmp_path / "resumed"), "--set", "stop_after=2"]) == 0
    assert main(base + ["--out-dir", str(tmp_path / "resumed"), "--resume"]) == 0
    a, _ = load_memory(tmp_path / "run" / "visual_memory.pt")
    b, _ = load_memory(tmp_path / "resumed" / "visual_memory.pt")
    assert a.arch.dropout == 0.5  # dropout draws from the RNG the checkpoint keeps: a resumed run is the same run
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert sorted(p.name for p in cache.glob("residual/*/*.npz")) == ["a.npz", "b.npz"]
    with np.load(next(cache.glob("residual/*/a.npz"))) as z:
        maps = z["residual"]
    assert maps.shape[1:3] == (2, 1) and not maps[0].any() and maps[1:].max() > 0.5  # frame 0 has no motion
    assert np.allclose(maps[:, 1], maps[:, 0, :, :, ::-1])  # the mirrored side is the mirror image
    net, meta = load_memory(tmp_path / "run" / "visual_memory.pt")
    assert net.arch.residual and meta["residual"] is True

    config = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {
        "weights": str(tmp_path / "run" / "visual_memory.pt"), "mpnet_weights": str(tmp_path / "mp.pt"),
        "work_width": 160}})
    pipeline = Pipeline(config)
    segmenter = pipeline.segmenter
    images = make_scene(scene).frames[:4]
    outs = [r for i, img in enumerate(images) for r in pipeline.segment(Frame(img, i * 33_333_333, "scene", i))]
    assert len(outs) == 4
    segmenter.reset()
    segmenter._maps(images[0], True)
    maps = segmenter._maps(images[1], False)
    assert maps.memory_motion.shape == (2,) + maps.motion.shape
    assert np.array_equal(maps.memory_motion[1], residual_map(maps.flow))
    plain = VisualMemoryNet(MemoryArch(appearance=8, state=8))
    save_memory(tmp_path / "plain.pt", plain, {})
    segmenter = Pipeline(PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {
        "weights": str(tmp_path / "plain.pt"), "mpnet_weights": str(tmp_path / "mp.pt"), "work_width": 160}})).segmenter
    segmenter._maps(images[0], True)
    plain_maps = segmenter._maps(images[1], False)
    assert plain_maps.memory_motion is plain_maps.motion  # a memory without the residual reads MP-Net's map alone


def test_mpnet_and_the_residual_map_share_one_homography_fit_a_frame(monkeypatch) -> None:
    from movseg_ros import ego_motion
    from movseg_ros.config_io import load_pipeline_config
    from movseg_ros.segmenters.visual_memory import VisualMemorySegmenter
    from movseg_ros.visual_memory.residual import heading_residual

    pipeline = Pipeline(load_pipeline_config(CONFIG / "visual_memory.yaml"))  # the shipped files read the residual
    segmenter = pipeline.segmenter
    assert isinstance(segmenter, VisualMemorySegmenter) and segmenter.mpnet.model.arch.motion_input == "residual"
    fits = []
    fit = ego_motion.EgoMotion.fit
    monkeypatch.setattr(ego_motion.EgoMotion, "fit", staticmethod(lambda *a, **k: fits.append(1) or fit(*a, **k)))
    scene = make_scene(SceneConfig(width=256, height=144, frames=4))
    for t, image in enumerate(scene.frames):
        pipeline.process(Frame(image, t * 33_333_333, "scene", t))
    assert len(fits) == len(scene.frames)  # one a frame (two before: MP-Net's and the residual map's own)
    flow = _camera_flow(144, 256)
    flow[40:80, 60:100] += np.array([-3.0, 2.0], np.float32)
    residual, magnitude = heading_residual(flow)
    assert np.allclose(residual_map(flow, magnitude), residual_map(flow), atol=1e-3)  # the map of a fit of its own
    assert abs(residual[60, 80] - np.array([-3.0, 2.0])).max() < 0.3 and abs(residual[10, 10]).max() < 0.3
