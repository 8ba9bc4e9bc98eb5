"""STEm-Seg with a motion input: the residual-motion channels, the network that reads them, a warm start from an
RGB-only file, training and the pipeline with such weights."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.model_files import ModelFileError
from movseg_ros.stem_seg.arch import MOTION_CHANNELS, StemSegArch
from movseg_ros.stem_seg.motion import ClipMotion
from movseg_ros.stem_seg.network import build_stemseg, load_stemseg, save_stemseg
from movseg_ros.training.loop import warm_start
from movseg_ros.two_stream.arch import ArchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parent.parent
TINY = StemSegArch(fpn_channels=16, decoder_channels=(16, 16, 8, 8), gn_groups=4)
OBJECT = (slice(40, 80), slice(60, 110))  # where the mover is in every frame (it moves against the camera)


def _panning_clip(frames: int = 5) -> np.ndarray:
    """(T, 120, 192, 3) uint8: a textured scene the camera pans over (2, 1) px a frame, and a textured
    object that stays put in the image, i.e. moves against the scene with the camera."""
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (200, 300, 3)).astype(np.uint8), (0, 0), 2)
    thing = cv2.GaussianBlur(rng.integers(0, 256, (40, 50, 3)).astype(np.uint8), (0, 0), 1.5)
    out = []
    for t in range(frames):
        frame = scene[20 + t:140 + t, 30 + 2 * t:222 + 2 * t].copy()
        frame[OBJECT] = thing
        out.append(frame)
    return np.stack(out)


def test_clip_motion_marks_what_moves_against_the_camera_in_every_frame() -> None:
    clip = _panning_clip()
    motion = ClipMotion()(clip)
    assert motion.shape == (5, MOTION_CHANNELS, 120, 192) and motion.dtype == np.float32
    assert motion.min() >= -1.0 and motion.max() <= 1.0 and (motion[:, 2] >= 0).all()
    inner = (slice(OBJECT[0].start + 8, OBJECT[0].stop - 8), slice(OBJECT[1].start + 8, OBJECT[1].stop - 8))
    background = np.ones((120, 192), bool)
    background[OBJECT[0].start - 12:OBJECT[0].stop + 12, OBJECT[1].start - 12:OBJECT[1].stop + 12] = False
    background[:12], background[-12:], background[:, :12], background[:, -12:] = False, False, False, False
    for t in range(5):  # frame 0 too (from the flow to frame 1, negated)
        on, off = float(motion[t, 2][inner].mean()), float(motion[t, 2][background].mean())
        assert on > 0.3 and on > 5 * off, (t, on, off)
        # the object is still in the image while the scene moves (2, 1) a frame: against the scene it
        # moves by (+2, +1) from where it was, so its flow to the frame before, minus the camera's, is (-2, -1)
        assert motion[t, 0][inner].mean() < 0 and motion[t, 1][inner].mean() < 0


def test_clip_motion_of_one_frame_is_zero_and_bad_frames_are_refused() -> None:
    assert not ClipMotion()(_panning_clip(1)).any()
    with pytest.raises(ValueError, match="uint8"):
        ClipMotion()(_panning_clip(2).astype(np.float32))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        ClipMotion()(_panning_clip(2)[..., 0])


def test_extend_appends_the_motion_of_each_clip() -> None:
    clip = _panning_clip(3)
    rgb = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div(255.0)[None].repeat(2, 1, 1, 1, 1)
    out = ClipMotion().extend(rgb)
    assert out.shape == (2, 3, 3 + MOTION_CHANNELS, 120, 192)
    assert torch.equal(out[:, :, :3], rgb)
    assert np.allclose(out[0, :, 3:].numpy(), ClipMotion()(clip), atol=1e-6)


def test_motion_setting_is_checked_and_old_records_read_as_rgb_only() -> None:
    assert StemSegArch.from_dict({k: v for k, v in TINY.to_dict().items() if k != "motion_channels"}).motion_channels == 0
    with pytest.raises(ArchError, match="motion_channels"):
        StemSegArch(motion_channels=2)
    net = build_stemseg(StemSegArch(**{**TINY.to_dict(), "motion_channels": MOTION_CHANNELS}))
    assert net.in_channels == 6
    with pytest.raises(ValueError, match="residual motion"):
        net(torch.rand(1, 2, 3, 48, 64))


def test_a_motion_network_warm_started_from_an_rgb_file_starts_as_that_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rgb = build_stemseg(TINY).eval()
    path = save_stemseg(tmp_path / "rgb.pt", rgb, TINY, {"command": "test"}, half=False)
    arch = StemSegArch(**{**TINY.to_dict(), "motion_channels": MOTION_CHANNELS})
    torch.manual_seed(1)
    net = build_stemseg(arch)
    with pytest.raises(ModelFileError, match="rgb.pt"):  # strict without naming the new module
        warm_start(net, path, "stemseg")
    warm_start(net, path, "stemseg", ("motion.",))
    net.eval()
    clip = torch.rand(1, 3, 3, 48, 64, generator=torch.Generator().manual_seed(2))
    moving = torch.cat([clip, torch.rand(1, 3, MOTION_CHANNELS, 48, 64)], dim=2)
    with torch.no_grad():
        a, b = rgb(clip), net(moving)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the new module is there and does change the output once trained away from zero
    with torch.no_grad():
        net.motion.projections[-1].weight.fill_(0.1)
        assert not torch.equal(net(moving)["seediness"], a["seediness"])
    motion_file = save_stemseg(tmp_path / "motion.pt", net, arch, {"command": "test"}, half=False)
    with pytest.raises(ModelFileError, match="already has"):
        warm_start(build_stemseg(arch), motion_file, "stemseg", ("motion.",))


@pytest.fixture(scope="module")
def motion_weights(tiny_stemseg: Path, tmp_path_factory) -> Path:
    """A motion network trained 3 steps from the tiny RGB weights (warm start naming the new module)."""
    out = tmp_path_factory.mktemp("stemseg_motion")
    assert main(TRAIN + ["--set", f"start_from={tiny_stemseg}", "--out-dir", str(out), "--set",
                         "start_from_new=[motion.]", "--set", f"export={out / 'w.pt'}"]) == 0
    return out / "w.pt"


TRAIN = ["train", "stemseg", "--config", str(REPO / "config" / "train_stemseg_tiny.yaml"),
         "--set", "arch={motion_channels: 3}"]


def test_training_a_motion_network_warm_starts_only_when_the_new_module_is_named(
        motion_weights: Path, tiny_stemseg: Path, tmp_path: Path, capsys) -> None:
    model, meta = load_stemseg(motion_weights)
    assert model.arch.motion_channels == MOTION_CHANNELS and len(meta["start_from_sha256"]) == 64
    assert any(k.startswith("motion.") for k in model.state_dict())
    capsys.readouterr()
    # strict without start_from_new: the RGB file lacks the motion encoder, and the error names the file
    assert main(TRAIN + ["--set", f"start_from={tiny_stemseg}", "--out-dir", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert str(tiny_stemseg) in err and "motion." in err


def test_the_pipeline_feeds_motion_weights_their_motion(motion_weights: Path) -> None:
    from movseg_ros.frame import Frame
    from movseg_ros.pipeline import Pipeline, PipelineConfig

    pipe = Pipeline(PipelineConfig.from_dict({"pipeline": "stem_seg", "stem_seg": {
        "weights": str(motion_weights), "accelerator": "eager", "clip_length": 3, "work_width": 192,
        "seed_threshold": 0.0, "min_tube_seediness": 0.0}}))
    seen = []
    network = pipe.segmenter.network
    pipe.segmenter.network = lambda clip: seen.append(clip.clone()) or network(clip)
    frames = [Frame(f, (t + 1) * 33_333_333, "cam", t) for t, f in enumerate(_panning_clip(7))]
    outputs = [o for f in frames for o in pipe.process(f)] + pipe.finish()
    assert [o.frame.index for o in outputs] == list(range(7))
    assert [tuple(c.shape[1:3]) for c in seen] == [(3, 6), (3, 6), (1, 6)]  # two clips, then the tail of one frame
    assert seen[0][0, :, 3:].abs().amax() > 0.3 and not seen[-1][0, :, 3:].any()  # one frame: no motion


def test_bench_times_the_motion_stage_of_motion_weights(motion_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "stages.json"
    assert main(["bench", "stages", "--width", "160", "--height", "120", "--iterations", "2", "--warmup", "1",
                 "--device", "cpu", "--threads", "1", "--pipelines", "stem_seg", "--accelerators", "eager",
                 "--stem-seg-weights", str(motion_weights), "--json", str(out)]) == 0
    import json

    (run,) = json.loads(out.read_text())["runs"]
    assert list(run["stages"]) == ["motion", "network", "clustering", "stitching", "tracking", "total"]
    assert run["stages"]["motion"]["mean_ms"] > 0


def test_start_from_new_needs_start_from(capsys) -> None:
    assert main(["train", "stemseg", "--config", str(REPO / "config" / "train_stemseg_tiny.yaml"),
                 "--set", "start_from_new=[motion.]"]) == 2
    assert "start_from_new" in capsys.readouterr().err
