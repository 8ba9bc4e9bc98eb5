"""The visual memory's map in the geometric pipeline (`geometric.memory_net: visual_memory`): the memory runs on
each frame in a worker thread beside the pipeline, and its map of that same frame is averaged into the final one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.frame import Frame
from movseg_ros.model_files import ModelFileError
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.segmenters.geometric import GeometricConfig, GeometricSegmenter
from movseg_ros.segmenters.memory_map import ConcurrentMemoryMap
from movseg_ros.visual_memory.mpnet import MPNet, MPNetArch, save_mpnet
from movseg_ros.visual_memory.network import MemoryArch, VisualMemoryNet, save_memory

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCENE = SceneConfig(width=320, height=240, frames=6, seed=0)


def _files(folder: Path, bias: float) -> dict[str, str]:
    """A memory whose online head says logit `bias` everywhere, with an MP-Net for it."""
    torch.manual_seed(0)
    save_mpnet(folder / "mp.pt", MPNet(MPNetArch(width=16)).eval(), {}, half=False)
    net = VisualMemoryNet(MemoryArch(appearance=8, state=8))
    with torch.no_grad():
        net.online_head.weight.zero_()
        net.online_head.bias.fill_(bias)
    save_memory(folder / f"vm{bias:+.0f}.pt", net, {})
    return {"memory_weights": str(folder / f"vm{bias:+.0f}.pt"), "memory_mpnet_weights": str(folder / "mp.pt")}


def _moving_area(seg: GeometricSegmenter, frames: list[np.ndarray], start: int = 0) -> list[float]:
    buf, shares = ClipBuffer(4), []
    for t, img in enumerate(frames):
        buf.push(Frame(img, (start + t) * 33_000_000, "cam", start + t))
        cover = np.zeros(img.shape[:2], bool)
        for d in (d for r in seg.process(buf) for d in r.detections if d.moving):
            cover |= d.mask
        shares.append(float(cover.mean()))
    return shares


def test_the_memory_map_of_each_frame_is_averaged_into_it(tmp_path: Path) -> None:
    frames = make_scene(SCENE).frames
    base = dict(appearance="none", motion_net="none", refine_radius=0)
    plain = _moving_area(GeometricSegmenter(GeometricConfig(**base)), frames)
    sure = GeometricSegmenter(GeometricConfig(memory_net="visual_memory", **_files(tmp_path, 8.0), **base))
    everywhere = _moving_area(sure, frames)
    nowhere = _moving_area(GeometricSegmenter(GeometricConfig(memory_net="visual_memory", **_files(tmp_path, -8.0),
                                                              **base)), frames)
    assert max(plain[2:]) < 0.5 and max(plain[2:]) > 0.0  # the scene's movers: small, and found
    # (p + 1) / 2 > 0.5 wherever the pipeline has any evidence: more than alone; (p + 0) / 2: only the near-sure
    assert all(e >= p for e, p in zip(everywhere, plain)) and sum(everywhere) > 1.5 * sum(plain)
    assert all(n <= p for n, p in zip(nowhere, plain)) and sum(nowhere) < sum(plain)
    assert sure.memory_map.memory.memory.state is not None  # the memory stepped on the stream
    sure.reset()
    assert sure.memory_map.memory.memory.state is None


class _SlowMemory:
    """A stand-in memory: each map is its frame's first pixel after a pause; it records what it saw."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.resets = 0
        self.busy = threading.Event()

    def online_map(self, rgb: np.ndarray) -> np.ndarray:
        self.busy.set()
        time.sleep(0.2)
        self.seen.append(int(rgb[0, 0, 0]))
        self.busy.clear()
        return np.full(rgb.shape[:2], rgb[0, 0, 0] / 255.0, np.float32)

    def reset(self) -> None:
        assert not self.busy.is_set(), "reset while a step is under way"
        self.resets += 1


def test_the_concurrent_map_is_the_started_frames_and_a_reset_waits_for_the_step_under_way() -> None:
    memory = _SlowMemory()
    maps = ConcurrentMemoryMap(memory)
    with pytest.raises(RuntimeError, match="no frame was started"):
        maps.result()
    frame = np.full((6, 8, 3), 51, np.uint8)
    maps.start(frame)
    assert memory.busy.wait(2.0)  # it runs in the worker while the caller goes on
    assert np.allclose(maps.result(), 0.2)
    with pytest.raises(RuntimeError):
        maps.result()  # taken once
    maps.start(np.full((6, 8, 3), 102, np.uint8))
    assert memory.busy.wait(2.0)
    maps.reset()  # waits for the step, then the memory forgets
    assert memory.seen == [51, 102] and memory.resets == 1
    with pytest.raises(RuntimeError):
        maps.result()  # the reset dropped the frame it was for


def test_bad_memory_settings_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="geometric.memory_net 'lstm'"):
        GeometricConfig(memory_net="lstm")
    files = _files(tmp_path, 0.0)
    (tmp_path / "bad.pt").write_bytes(Path(files["memory_weights"]).read_bytes()[:4096])
    for key, name in (("memory_weights", "geometric.memory_weights"), ("memory_mpnet_weights", "geometric.memory_mpnet_weights")):
        with pytest.raises(ModelFileError, match=name) as e:
            GeometricSegmenter(GeometricConfig(memory_net="visual_memory", **{**files, key: str(tmp_path / "bad.pt")}))
        assert e.value.path == tmp_path / "bad.pt"


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_the_node_refuses_a_corrupt_memory_file_with_one_line(node_env, tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    from ros_helpers import assert_refuses_corrupt_shipped

    assert_refuses_corrupt_shipped(node_env, tmp_path, "visual_memory.pt", "geometric.memory_weights", "/gm_test/image",
                                   ("geometric.memory_net:=visual_memory",))
