"""The visual memory's map in the geometric pipeline (`geometric.memory_net: visual_memory`): the memory steps on
each frame in a worker thread beside the pipeline, reading the pipeline's own MP-Net map and residual, and its
map of that same frame is averaged into the final one; the saliency network decodes the memory's appearance pass."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.frame import Frame
from movseg_ros.model_files import ModelFileError
from movseg_ros.saliency.network import SaliencyArch, SaliencyNet, save_saliency
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.segmenters.geometric import GeometricConfig, GeometricSegmenter
from movseg_ros.segmenters.memory_map import ConcurrentMemoryMap
from movseg_ros.visual_memory.mpnet import MPNet, MPNetArch, save_mpnet
from movseg_ros.visual_memory.network import MemoryArch, VisualMemoryNet, save_memory
from movseg_ros.visual_memory.predictor import OnlineMemory
from movseg_ros.visual_memory.residual import residual_map

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCENE = SceneConfig(width=320, height=240, frames=6, seed=0)


def _files(folder: Path, bias: float) -> dict[str, str]:
    """A memory whose online head says logit `bias` everywhere, and an MP-Net for the pipeline."""
    torch.manual_seed(0)
    save_mpnet(folder / "mp.pt", MPNet(MPNetArch(width=16)).eval(), {}, half=False)
    net = VisualMemoryNet(MemoryArch(appearance=8, state=8, residual=True))
    with torch.no_grad():
        net.online_head.weight.zero_()
        net.online_head.bias.fill_(bias)
    save_memory(folder / f"vm{bias:+.0f}.pt", net, {})
    return {"memory_weights": str(folder / f"vm{bias:+.0f}.pt"), "mpnet_weights": str(folder / "mp.pt")}


def _moving_area(seg: GeometricSegmenter, frames: list[np.ndarray]) -> list[float]:
    buf, shares = ClipBuffer(4), []
    for t, img in enumerate(frames):
        buf.push(Frame(img, t * 33_000_000, "cam", t))
        cover = np.zeros(img.shape[:2], bool)
        for d in (d for r in seg.process(buf) for d in r.detections if d.moving):
            cover |= d.mask
        shares.append(float(cover.mean()))
    return shares


def test_the_memory_map_of_each_frame_is_averaged_into_it(tmp_path: Path) -> None:
    frames = make_scene(SCENE).frames
    base = dict(appearance="none", refine_radius=0)
    sure_files = _files(tmp_path, 8.0)
    plain = _moving_area(GeometricSegmenter(GeometricConfig(memory_net="none", mpnet_weights=sure_files["mpnet_weights"],
                                                            **base)), frames)
    sure = GeometricSegmenter(GeometricConfig(memory_net="visual_memory", **sure_files, **base))
    everywhere = _moving_area(sure, frames)
    nowhere = _moving_area(GeometricSegmenter(GeometricConfig(memory_net="visual_memory", **_files(tmp_path, -8.0),
                                                              **base)), frames)
    assert max(plain[2:]) < 0.5 and max(plain[2:]) > 0.0  # the scene's movers: small, and found
    # (p + 1) / 2 > 0.5 wherever the pipeline has any evidence: more than alone; (p + 0) / 2: only the near-sure
    assert all(e >= p for e, p in zip(everywhere, plain)) and sum(everywhere) > 1.5 * sum(plain)
    assert all(n <= p for n, p in zip(nowhere, plain)) and sum(nowhere) < sum(plain)
    kept = _moving_area(GeometricSegmenter(GeometricConfig(memory_net="visual_memory", memory_keep=0.0,
                                                           **_files(tmp_path, -8.0), **base)), frames)
    assert kept == plain  # memory_keep 0: every pixel keeps this pipeline's probability
    assert sure.memory_map.memory.state is not None  # the memory stepped on the stream
    sure.reset()
    assert sure.memory_map.memory.state is None


def test_the_concurrent_map_is_the_memory_stepped_on_the_pipelines_maps_of_that_frame() -> None:
    torch.manual_seed(0)
    net = VisualMemoryNet(MemoryArch(appearance=8, state=8, residual=True)).eval()
    maps = ConcurrentMemoryMap(OnlineMemory(net), work_width=64, refine_radius=0)
    reference = OnlineMemory(net)
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="no frame was fed"):
        maps.result((48, 64))
    with pytest.raises(RuntimeError, match="after start"):
        maps.feed(np.zeros((12, 16), np.float32), None)
    for t in range(3):
        rgb = rng.integers(0, 255, (48, 64, 3), np.uint8)
        mpnet = rng.random((12, 16)).astype(np.float32)
        residual = None if t == 0 else rng.normal(0, 2, (48, 64, 2)).astype(np.float32)
        maps.start(rgb)
        maps.feed(mpnet, residual)
        with pytest.raises(RuntimeError, match="once a frame"):
            maps.feed(mpnet, residual)
        out = maps.result((48, 64))
        # the residual is the pipeline's, already camera-compensated: the memory squashes its magnitude, no new fit
        second = np.zeros((12, 16), np.float32) if residual is None else \
            residual_map(residual, np.hypot(residual[..., 0], residual[..., 1]).astype(np.float32))
        logits = reference.step(reference.input(rgb, np.stack([mpnet, second])))
        expected = 1 / (1 + np.exp(-cv2.resize(logits.astype(np.float32), (64, 48), interpolation=cv2.INTER_LINEAR)))
        assert np.allclose(out, expected, atol=1e-5), t  # that frame's step, the state carried from the last
    assert maps.memory.state is not None

    slow = maps.memory.features.tensors
    finished = []

    def tensors(rgb):
        time.sleep(0.2)
        out = slow(rgb)
        finished.append(True)
        return out

    maps.memory.features.tensors = tensors
    maps.start(rng.integers(0, 255, (48, 64, 3), np.uint8))
    maps.reset()  # waits for the appearance pass under way, then forgets
    assert finished == [True] and maps.memory.state is None
    with pytest.raises(RuntimeError):
        maps.feed(np.zeros((12, 16), np.float32), None)  # the reset dropped the frame it was for


def test_the_saliency_map_comes_from_the_memorys_appearance_pass_when_they_share_the_encoder(tmp_path: Path) -> None:
    frames = make_scene(SCENE).frames
    shared = GeometricSegmenter(GeometricConfig(memory_net="visual_memory"))  # the shipped files: one encoder
    assert shared.memory_map.saliency is not None and shared.saliency is None
    other = SaliencyNet(SaliencyArch(width=16))  # random encoder: not the memory's
    save_saliency(tmp_path / "other.pt", other, {})
    apart = GeometricSegmenter(GeometricConfig(memory_net="visual_memory", saliency_weights=str(tmp_path / "other.pt")))
    assert apart.memory_map.saliency is None and apart.saliency is not None  # its own, on its schedule
    from movseg_ros.paths import weights_file
    from movseg_ros.saliency.predictor import SaliencyPredictor

    predictor = SaliencyPredictor(weights_file("", "saliency_mobilenet_v2.pt"), 256, frozen=False)
    shared.memory_map.start(frames[2])
    got = shared.memory_map.salient(frames[2].shape[:2])
    assert np.abs(got - predictor(frames[2])).mean() < 0.02  # the same network on the same frame, at 256 px
    shared.memory_map.reset()


def test_frames_too_small_for_mpnet_still_step_the_memory(tmp_path: Path) -> None:
    seg = GeometricSegmenter(GeometricConfig(memory_net="visual_memory", appearance="none", **_files(tmp_path, 8.0)))
    for w, h in ((32, 32), (120, 24)):  # under MP-Net's smallest side: its map is zeros, the memory still steps
        frames = [cv2.resize(img, (w, h)) for img in make_scene(SCENE).frames[:3]]
        assert len(_moving_area(seg, frames)) == 3
        assert seg.memory_map.memory.state is not None
        seg.reset()


def test_bad_memory_settings_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="geometric.memory_net 'lstm'"):
        GeometricConfig(memory_net="lstm")
    with pytest.raises(ValueError, match="geometric.memory_keep must be in"):
        GeometricConfig(memory_keep=-0.1)
    with pytest.raises(ValueError, match="needs motion_net: mpnet"):
        GeometricConfig(memory_net="visual_memory", motion_net="none")
    files = _files(tmp_path, 0.0)
    (tmp_path / "bad.pt").write_bytes(Path(files["memory_weights"]).read_bytes()[:4096])
    with pytest.raises(ModelFileError, match="geometric.memory_weights") as e:
        GeometricSegmenter(GeometricConfig(memory_net="visual_memory", **{**files, "memory_weights": str(tmp_path / "bad.pt")}))
    assert e.value.path == tmp_path / "bad.pt"
    with pytest.raises(ModelFileError, match="geometric.saliency_weights"):
        GeometricSegmenter(GeometricConfig(memory_net="visual_memory", saliency_weights=str(tmp_path / "bad.pt")))


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_the_node_refuses_a_corrupt_memory_file_with_one_line(node_env, tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    from ros_helpers import assert_refuses_corrupt_shipped

    assert_refuses_corrupt_shipped(node_env, tmp_path, "visual_memory_movers.pt", "geometric.memory_weights", "/gm_test/image",
                                   ("geometric.memory_net:=visual_memory",))


def test_the_shipped_movers_memory_records_the_recipe_of_its_config() -> None:
    from movseg_ros.training.common import load_train_config
    from movseg_ros.training.visual_memory import MemoryTrainConfig
    from movseg_ros.visual_memory.network import load_memory

    root = Path(__file__).resolve().parent.parent
    config = load_train_config(MemoryTrainConfig, root / "config" / "train_visual_memory_movers.yaml")
    _, meta = load_memory(root / "models" / "visual_memory_movers.pt")
    assert meta["command"].endswith("--config config/train_visual_memory_movers.yaml")
    assert meta["iterations"] == config.iterations and meta["data"]["work_width"] == config.work_width
    assert meta["data"]["extra"] == {root_: {"sequences": 160, "frames": 160 * 24} for root_ in config.extra_roots}
    assert sorted(meta["data"]["held_aside"]) == sorted(config.held_aside)
    assert not set(meta["data"]["sequences"]) & set(config.held_aside)  # the held-aside six were never trained on
    assert "CC BY-NC 4.0" in meta["licence"]
