"""Seed 003's motion stream MP-Net: the angle field it reads, the network and its file, its synthetic
targets, and its training stage through the shared loop on tiny synthetic and DAVIS-layout data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.model_files import ModelFileError, save_with_settings
from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.config import preset
from movseg_ros.training.common import TrainConfigError, config_from_dict
from movseg_ros.training.mpnet import MPNetTrainConfig
from movseg_ros.two_stream.inputs import motion_flow
from movseg_ros.visual_memory.angle_field import angle_field, field_tensor
from movseg_ros.visual_memory.motion_data import SynthMotionData
from movseg_ros.visual_memory.mpnet import MotionPredictor, MPNet, MPNetArch, load_mpnet, save_mpnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = Path(__file__).resolve().parent.parent / "config"
TINY = CONFIG / "train_mpnet_tiny.yaml"


def test_the_angle_channels_turn_with_the_flow_and_vanish_where_it_barely_moves() -> None:
    rng = np.random.default_rng(0)
    theta, m = rng.uniform(-np.pi, np.pi, (20, 30)), rng.uniform(0.5, 5.0, (20, 30))
    flow = np.stack([m * np.cos(theta), m * np.sin(theta)], -1).astype(np.float32)
    flow[:5] = 0.05  # |f| = 0.07 px: below the threshold, its direction is noise
    turned = np.stack([-flow[..., 1], flow[..., 0]], -1)  # rotated by +90 degrees (x -> y)
    a, b = angle_field(flow), angle_field(turned)
    assert a.shape == (20, 30, 3) and a.dtype == np.float32
    assert np.allclose(a[:5, :, :2], 0) and np.allclose(b[:5, :, :2], 0)
    assert np.allclose(b[5:, :, 0], -a[5:, :, 1], atol=1e-6) and np.allclose(b[5:, :, 1], a[5:, :, 0], atol=1e-6)
    assert np.allclose(a[5:, :, 0] ** 2 + a[5:, :, 1] ** 2, 1, atol=1e-5)
    assert np.allclose(a[..., 2], b[..., 2])  # the magnitude does not care about the direction
    right = angle_field(np.tile(np.array([2.0, 0.0], np.float32), (4, 4, 1)))
    assert np.allclose(right[..., 0], 1) and np.allclose(right[..., 1], 0)


def test_the_magnitude_is_scaled_by_a_robust_maximum_but_small_motion_is_not_stretched() -> None:
    m = np.linspace(0, 10, 1000, dtype=np.float32).reshape(20, 50)
    field = angle_field(np.stack([m, np.zeros_like(m)], -1))[..., 2]
    p99 = np.percentile(m, 99)
    assert np.isclose(field.max(), 1) and np.allclose(field[m <= p99], m[m <= p99] / p99, atol=1e-5)
    assert np.all(field[m >= p99] == 1)  # the top 1 % are clipped, not the scale
    slow = angle_field(np.full((8, 8, 2), 0.3, np.float32))
    assert np.allclose(slow[..., 2], np.hypot(0.3, 0.3))  # divided by 1 px, not its own maximum
    assert np.allclose(angle_field(np.full((4, 4, 2), np.nan, np.float32)), 0)
    with pytest.raises(ValueError, match="H, W, 2"):
        angle_field(np.zeros((4, 4, 3)))


def test_network_output_is_at_stride_4_for_odd_sizes() -> None:
    net = MPNet(MPNetArch(width=16)).eval()
    with torch.no_grad():
        for h, w in ((33, 47), (97, 131), (180, 320)):
            assert net(torch.rand(2, 3, h, w)).shape == (2, 1, -(-h // 4), -(-w // 4))
    with pytest.raises(ValueError, match="at least 32"):
        net(torch.rand(1, 3, 31, 64))
    with pytest.raises(ValueError, match="width"):
        MPNetArch(width=12)
    assert sum(p.numel() for p in MPNet().parameters()) <= 2_000_000


def test_file_round_trip_and_bad_files_are_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MPNet(MPNetArch(width=16)).eval()
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        out = net(x)
    save_mpnet(tmp_path / "m.pt", net, {"note": "test"}, half=False)
    back, meta = load_mpnet(tmp_path / "m.pt")
    assert meta["note"] == "test" and back.arch == MPNetArch(width=16)
    with torch.no_grad():
        assert torch.equal(back(x), out)
    predictor = MotionPredictor(tmp_path / "m.pt")
    p = predictor(np.zeros((48, 64, 2), np.float32))
    assert p.shape == (12, 16) and p.dtype == np.float32 and np.all((p >= 0) & (p <= 1))

    (tmp_path / "cut.pt").write_bytes((tmp_path / "m.pt").read_bytes()[:3000])
    with pytest.raises(ModelFileError, match="corrupt or truncated") as e:
        load_mpnet(tmp_path / "cut.pt")
    assert str(tmp_path / "cut.pt") in str(e.value)
    save_with_settings(tmp_path / "other.pt", "saliency_mobilenet_v2", net, {"width": 16}, {})
    with pytest.raises(ModelFileError, match="expected 'mpnet'") as e:
        load_mpnet(tmp_path / "other.pt")
    assert str(tmp_path / "other.pt") in str(e.value)
    save_with_settings(tmp_path / "wide.pt", "mpnet", net, {"width": 24}, {})  # record and tensors disagree
    with pytest.raises(ModelFileError, match="shape") as e:
        load_mpnet(tmp_path / "wide.pt")
    assert str(tmp_path / "wide.pt") in str(e.value)
    with pytest.raises(ModelFileError, match="no such file"):
        MotionPredictor(tmp_path / "none.pt")


def test_the_synthetic_target_is_what_moves_from_frame_0_to_1() -> None:
    synth = preset("motion").replace(texture_source="skimage", width=96, height=64, n_moving=(2, 2), n_static=(2, 2),
                                     object_area=(0.05, 0.1))
    data = SynthMotionData(synth, range(3, 4), "truth")
    clip = generate_clip(synth.replace(frames=2), 3)
    item = data[0]
    moving = [i for i in clip.ids if clip.moving[0, i]]
    still = [i for i in clip.ids if not clip.moving[0, i] and np.any(clip.instances[0] == i)]
    assert moving and still  # both kinds are in the frame, so the test can tell them apart
    expected = np.isin(clip.instances[0], moving)
    assert item["mask"].shape == (1, 64, 96) and np.array_equal(item["mask"][0].numpy() > 0.5, expected)
    assert np.allclose(item["field"].numpy(), angle_field(clip.flow[0]).transpose(2, 0, 1))
    dis = SynthMotionData(synth, range(3, 4), "dis")[0]
    assert dis["field"].shape == (3, 64, 96) and torch.equal(dis["mask"], item["mask"])


def test_phases_skip_what_starts_at_or_past_the_end_and_need_a_davis_folder() -> None:
    def phases(**kw):
        return config_from_dict(MPNetTrainConfig, {"davis": "", "iterations": 10, **kw}).phases()

    assert phases(dis_from=4, davis_from=10) == [(0, "truth"), (4, "dis")]
    assert phases(dis_from=0, davis_from=30) == [(0, "dis")]
    assert phases(dis_from=12, davis_from=10) == [(0, "truth")]
    with pytest.raises(TrainConfigError, match="davis_from"):
        phases(dis_from=2, davis_from=6)


def _davis_folder(root: Path, names=("a", "b"), frames: int = 4) -> Path:
    """DAVIS layout: a textured square moving right over a still textured background, masked at 255."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (5, 5), 0)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), (3, 3), 0)
    for name in names:
        (root / name / "JPEGImages").mkdir(parents=True)
        (root / name / "Annotations").mkdir(parents=True)
        for i in range(frames):
            image, mask = background.copy(), np.zeros((48, 64), np.uint8)
            image[16:32, 8 + 4 * i:24 + 4 * i] = patch
            mask[16:32, 8 + 4 * i:24 + 4 * i] = 255
            cv2.imwrite(str(root / name / "JPEGImages" / f"{i:05d}.jpg"), image)
            cv2.imwrite(str(root / name / "Annotations" / f"{i:05d}.png"), mask)
    return root


@pytest.mark.timeout(120)
def test_training_runs_all_three_phases_and_resumes(tmp_path: Path) -> None:
    data = _davis_folder(tmp_path / "davis")
    base = ["train", "mpnet", "--config", str(TINY), "--set", f"davis={data}", "--set", "davis_heldout=[b]",
            "--set", 'flow_cache=""']
    out = tmp_path / "run"
    assert main(base + ["--out-dir", str(out), "--set", "stop_after=2"]) == 0
    assert main(base + ["--out-dir", str(out), "--resume", "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["step"] == 4 and summary["val_iou"] is not None
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in records if "val_iou" in r] == [2, 4]
    model, meta = load_mpnet(out / "mpnet.pt")
    assert [p["phase"] for p in meta["phases"]] == ["truth", "dis", "davis"]
    assert meta["data"]["heldout_sequences"] == ["b"] and "CC BY-NC 4.0" in meta["licence"]
    assert meta["stored_dtype"] == "float16" and model.arch.width == 16


def test_a_mask_of_another_size_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _davis_folder(tmp_path / "davis", frames=3)
    bad = data / "a" / "Annotations" / "00001.png"
    cv2.imwrite(str(bad), np.zeros((40, 64), np.uint8))
    args = ["train", "mpnet", "--config", str(TINY), "--set", f"davis={data}", "--set", "davis_heldout=[b]",
            "--set", 'flow_cache=""', "--set", "davis_from=0", "--out-dir", str(tmp_path / "bad")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "64x40" in err


def _panned_flow(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A camera panning 3 px right and a square moving 2 px down beside it: (flow, the square's mask)."""
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = 3.0
    mover = np.zeros((h, w), bool)
    mover[16:32, 20:36] = True
    flow[mover] = (3.0, 2.0)
    return flow, mover


def test_a_residual_mpnet_reads_the_flow_without_the_camera(tmp_path: Path) -> None:
    flow, mover = _panned_flow()
    field = field_tensor(motion_flow(flow, "residual")).numpy()  # cos, sin, magnitude of what the network reads
    assert np.allclose(field[2][~mover], 0, atol=0.05)  # the panned background stands still
    assert field[2][mover].min() > 0.5 and np.allclose(field[1][mover], 1, atol=0.05)  # the square moves down
    torch.manual_seed(0)
    net = MPNet(MPNetArch(width=16, motion_input="residual")).eval()
    save_mpnet(tmp_path / "r.pt", net, {}, half=False)
    predictor = MotionPredictor(tmp_path / "r.pt")
    assert predictor.model.arch.motion_input == "residual"
    with torch.no_grad():
        residual = torch.sigmoid(net(torch.from_numpy(field)[None]))[0, 0].numpy()
        raw = torch.sigmoid(net(field_tensor(flow)[None]))[0, 0].numpy()
    assert np.allclose(predictor(flow), residual, atol=1e-6) and not np.allclose(predictor(flow), raw, atol=1e-3)
    with pytest.raises(ValueError, match="motion_input 'depth'"):
        MPNetArch(motion_input="depth")


def test_residual_training_items_take_the_camera_out_of_each_flow(tmp_path: Path) -> None:
    synth = preset("motion").replace(texture_source="skimage", width=96, height=64)
    plain = SynthMotionData(synth, range(5, 6), "truth")[0]
    residual = SynthMotionData(synth, range(5, 6), "truth", motion_input="residual")[0]
    clip = generate_clip(synth.replace(frames=2), 5)
    expected = angle_field(motion_flow(clip.flow[0], "residual")).transpose(2, 0, 1)
    assert np.allclose(residual["field"].numpy(), expected) and torch.equal(residual["mask"], plain["mask"])
    assert not np.allclose(residual["field"].numpy(), plain["field"].numpy())
    with pytest.raises(ValueError, match="motion input 'depth'"):
        SynthMotionData(synth, range(1), "truth", motion_input="depth")
    with pytest.raises(TrainConfigError, match="motion_input"):
        config_from_dict(MPNetTrainConfig, {"davis": "", "iterations": 10, "davis_from": 10, "motion_input": "x"})


@pytest.mark.timeout(120)
def test_a_residual_run_records_its_input_and_its_davis_items_are_compensated(tmp_path: Path) -> None:
    from movseg_ros.visual_memory.motion_data import DavisMotionData

    data = _davis_folder(tmp_path / "davis")
    items = [DavisMotionData(data, sequences=["a"], work_width=64, augment=False, motion_input=m)[1]
             for m in ("flow", "residual")]
    assert torch.equal(items[0]["mask"], items[1]["mask"])
    out = tmp_path / "run"
    assert main(["train", "mpnet", "--config", str(TINY), "--set", f"davis={data}", "--set", "davis_heldout=[b]",
                 "--set", 'flow_cache=""', "--set", "motion_input=residual", "--out-dir", str(out)]) == 0
    model, meta = load_mpnet(out / "mpnet.pt")
    assert model.arch.motion_input == "residual" and "homography" in meta["input"]
