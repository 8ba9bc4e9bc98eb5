"""The geometric pipeline's learned motion evidence (`geometric.motion_net: mpnet`): MP-Net's probability of
independent motion, read from the pipeline's own camera-compensated flow, is added to the residual's evidence
(the larger of the two counts), so it can find what the residual misses and never hides what it finds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.segmenters.geometric import GeometricConfig, GeometricSegmenter
from movseg_ros.visual_memory.mpnet import MotionPredictor, MPNet, MPNetArch, save_mpnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCENE = SceneConfig(width=320, height=240, frames=8, seed=0)


def _mpnet_file(path: Path, bias: float | None, motion_input: str = "residual") -> Path:
    """An MP-Net file; with `bias` its head says that probability everywhere (logit `bias`)."""
    torch.manual_seed(0)
    net = MPNet(MPNetArch(width=16, motion_input=motion_input)).eval()
    if bias is not None:
        with torch.no_grad():
            net.head.weight.zero_()
            net.head.bias.fill_(bias)
    save_mpnet(path, net, {}, half=False)
    return path


def _moving_area(config: GeometricConfig, frames: list[np.ndarray]) -> list[float]:
    """Per frame, the share of the frame the segmenter's moving detections cover."""
    seg, buf = GeometricSegmenter(config), ClipBuffer(4)
    shares = []
    for t, img in enumerate(frames):
        buf.push(Frame(img, t * 33_000_000, "cam", t))
        dets = [d for r in seg.process(buf) for d in r.detections if d.moving]
        cover = np.zeros(img.shape[:2], bool)
        for d in dets:
            cover |= d.mask
        shares.append(float(cover.mean()))
    return shares


def test_mpnet_evidence_adds_to_the_residual_and_never_removes_it(tmp_path: Path) -> None:
    scene = make_scene(SCENE)
    base = dict(appearance="none", refine_radius=0, memory_net="none")  # MP-Net's evidence alone, without the memory
    plain = _moving_area(GeometricConfig(motion_net="none", **base), scene.frames)
    silent = _moving_area(GeometricConfig(mpnet_weights=str(_mpnet_file(tmp_path / "no.pt", -20.0)), **base),
                          scene.frames)
    loud = _moving_area(GeometricConfig(mpnet_weights=str(_mpnet_file(tmp_path / "yes.pt", 20.0)), **base),
                        scene.frames)
    assert max(plain[2:]) < 0.5  # the scene's movers are small
    assert silent == plain  # a network that sees nothing leaves the residual's evidence as it is
    assert min(loud[1:]) > 0.9  # one that sees motion everywhere makes everything move (bar the border)


def test_the_network_reads_the_pipelines_own_residual_at_its_width(tmp_path: Path, monkeypatch) -> None:
    scene = make_scene(SCENE)
    calls = []
    real = MotionPredictor.__call__

    def spy(self, flow, residual=None):
        calls.append((flow.shape, None if residual is None else residual.shape))
        return real(self, flow, residual)

    monkeypatch.setattr(MotionPredictor, "__call__", spy)
    config = GeometricConfig(appearance="none", memory_net="none", mpnet_weights=str(_mpnet_file(tmp_path / "r.pt", None)),
                             mpnet_width=128)
    seg = GeometricSegmenter(config)
    buf = ClipBuffer(4)
    for t, img in enumerate(scene.frames[:3]):
        buf.push(Frame(img, t * 33_000_000, "cam", t))
        seg.process(buf)
    assert calls == [((96, 128, 2), (96, 128, 2))] * 2  # frames 1 and 2, at 128 px wide, with the residual
    tiny = GeometricSegmenter(GeometricConfig(appearance="none", memory_net="none", work_width=64,
                                              mpnet_weights=str(_mpnet_file(tmp_path / "r.pt", None))))
    buf = ClipBuffer(4)
    for t, img in enumerate(np.ascontiguousarray(img[:60]) for img in scene.frames[:3]):  # work frames 64x12
        buf.push(Frame(img, t * 33_000_000, "cam", t))
        assert isinstance(tiny.process(buf), list)  # too small for MP-Net: no evidence from it, no error
    assert len(calls) == 2


def test_bad_motion_net_settings_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="geometric.motion_net 'raft'"):
        GeometricConfig(motion_net="raft")
    with pytest.raises(ValueError, match="geometric.mpnet_width"):
        GeometricConfig(mpnet_width=32)
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match="geometric.mpnet_weights") as e:
        Pipeline(PipelineConfig(geometric=GeometricConfig(mpnet_weights=str(missing))))
    assert str(missing) in str(e.value) and "no such file" in str(e.value)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(_mpnet_file(tmp_path / "whole.pt", None).read_bytes()[:2000])
    with pytest.raises(ValueError, match="geometric.mpnet_weights") as e:
        Pipeline(PipelineConfig(geometric=GeometricConfig(mpnet_weights=str(cut))))
    assert str(cut) in str(e.value) and "corrupt or truncated" in str(e.value)


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_the_node_refuses_a_corrupt_mpnet_file_with_one_line(node_env, tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    from ros_helpers import assert_refuses_corrupt_shipped

    assert_refuses_corrupt_shipped(node_env, tmp_path, "mpnet.pt", "geometric.mpnet_weights", "/mp_test/image")
