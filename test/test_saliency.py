"""The appearance prior's parts: fusion of motion and saliency, the every-k schedule carried by flow, the
network's file, and its training stage on a tiny DAVIS-layout set."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.model_files import ModelFileError
from movseg_ros.saliency.network import SaliencyArch, SaliencyNet, load_saliency, save_saliency
from movseg_ros.saliency.schedule import ScheduledSaliency
from movseg_ros.segmenters.appearance_fusion import FusionSettings, fuse_saliency

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = Path(__file__).resolve().parent.parent / "config"


def _square(shape, y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_motion_touching_a_salient_segment_takes_its_extent_and_untouched_ones_stay_static() -> None:
    shape = (60, 80)
    person = _square(shape, 10, 50, 10, 30)  # salient; only its arm moves
    bench = _square(shape, 30, 50, 50, 75)  # salient, never moves
    arm = _square(shape, 12, 20, 12, 28)
    blob = _square(shape, 2, 8, 60, 70)  # a mover nobody finds salient
    prob = np.where(arm | blob, 0.9, 0.05).astype(np.float32)
    sal = np.where(person | bench, 0.95, 0.02).astype(np.float32)
    out = fuse_saliency(prob, sal, FusionSettings(threshold=0.5, touch=0.05, trim=2.0))
    moving = out.prob > 0.5
    assert moving[person].all(), "the moving arm's salient segment gives the whole person"
    assert not moving[bench].any(), "a salient segment with no motion is never moving"
    assert moving[blob].all(), "motion no salient segment covers is kept from motion alone"
    assert len(out.static_segments) == 1 and (out.static_segments[0] == bench).all()
    assert out.static_scores[0] > 0.9


def test_a_barely_touched_segment_is_not_taken_and_trim_cuts_a_smeared_halo() -> None:
    shape = (60, 80)
    wall = _square(shape, 0, 60, 0, 40)  # a big salient region
    graze = _square(shape, 0, 2, 38, 42)  # motion grazing its edge: 4 of 2400 pixels
    out = fuse_saliency(np.where(graze, 0.9, 0.0).astype(np.float32), np.where(wall, 0.9, 0.0).astype(np.float32),
                        FusionSettings(threshold=0.5, touch=0.05, trim=2.0))
    assert not (out.prob > 0.5)[wall & ~graze].any()
    car = _square(shape, 20, 40, 20, 50)
    smear = _square(shape, 18, 42, 18, 56)  # DIS smears the car's motion over uncovered background
    prob = np.where(smear, 0.9, 0.0).astype(np.float32)
    sal = np.where(car, 0.9, 0.0).astype(np.float32)
    kept = fuse_saliency(prob, sal, FusionSettings(threshold=0.5, touch=0.05, trim=2.0)).prob > 0.5
    trimmed = fuse_saliency(prob, sal, FusionSettings(threshold=0.5, touch=0.05, trim=0.6)).prob > 0.5
    assert kept[smear].all()
    assert (trimmed == car).all(), "motion mostly inside the car is cut to the car"


class _Recorder:
    """A stand-in network: the map is the frame's red channel (so carrying is visible); records calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        self.release.wait(5)
        self.calls.append(int(rgb[0, 0, 1]))
        return rgb[..., 0].astype(np.float32) / 255.0


def _shift_warp(shape, dx: int):
    """Warp for a scene that moved dx pixels right since the previous frame."""
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return gx - dx, gy


def test_the_schedule_runs_every_k_frames_and_carries_maps_along_the_flow() -> None:
    shape = (20, 40)
    model = _Recorder()
    sched = ScheduledSaliency(model, every=3)
    maps = []
    for t in range(10):
        rgb = np.zeros(shape + (3,), np.uint8)
        rgb[:, 5 + 2 * t: 10 + 2 * t, 0] = 255  # a bar moving 2 px right each frame
        rgb[0, 0, 1] = t  # the frame's number, so the recorder knows which frame it saw
        maps.append(sched.step(rgb, None if t == 0 else _shift_warp(shape, 2)))
    sched.close()
    assert model.calls[:3] == [0, 3, 6] and len(model.calls) <= 4
    assert all(m is None for m in maps[:3]), "the first map is taken k frames after it was asked for"
    for t in range(3, 10):
        bar = np.zeros(shape, bool)
        bar[:, 5 + 2 * t: 10 + 2 * t] = True
        assert (maps[t] > 0.5)[1:].tolist() == bar[1:].tolist(), f"frame {t}: the map follows the bar"


def test_the_schedule_waits_for_a_slow_network_so_results_do_not_depend_on_timing() -> None:
    shape = (10, 10)
    model = _Recorder()
    model.release.clear()
    sched = ScheduledSaliency(model, every=1)
    rgb = np.full(shape + (3,), 200, np.uint8)
    sched.step(rgb, None)
    threading.Timer(0.3, model.release.set).start()
    out = sched.step(rgb, _shift_warp(shape, 0))
    assert out is not None and np.allclose(out, 200 / 255.0)
    sched.reset()
    assert sched.step(rgb, None) is None
    sched.close()


def test_network_output_shape_and_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SaliencyNet(SaliencyArch(width=16)).eval()
    x = torch.rand(1, 3, 96, 160) * 255
    out = net(x)
    assert out.shape == (1, 1, 24, 40)
    save_saliency(tmp_path / "s.pt", net, {"note": "test"}, half=False)
    back, meta = load_saliency(tmp_path / "s.pt")
    assert meta["note"] == "test" and back.arch.width == 16
    assert torch.allclose(back(x), out)
    (tmp_path / "cut.pt").write_bytes((tmp_path / "s.pt").read_bytes()[:3000])
    with pytest.raises(ModelFileError, match="corrupt or truncated") as e:
        load_saliency(tmp_path / "cut.pt")
    assert str(tmp_path / "cut.pt") in str(e.value)
    with pytest.raises(ModelFileError, match="no such file"):
        load_saliency(tmp_path / "none.pt")


def _davis_folder(root: Path, names=("a", "b"), frames: int = 3) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    for name in names:
        (root / name / "JPEGImages").mkdir(parents=True)
        (root / name / "Annotations").mkdir(parents=True)
        for i in range(frames):
            img = rng.integers(0, 255, (48, 64, 3), np.uint8)
            mask = np.zeros((48, 64), np.uint8)
            mask[10:30, 10 + 3 * i:30 + 3 * i] = 255
            img[mask > 0] = (250, 30, 30)
            cv2.imwrite(str(root / name / "JPEGImages" / f"{i:05d}.jpg"), img)
            cv2.imwrite(str(root / name / "Annotations" / f"{i:05d}.png"), mask)
    return root


@pytest.mark.timeout(120)
def test_training_runs_and_resumes(tmp_path: Path) -> None:
    data = _davis_folder(tmp_path / "davis")
    teacher = tmp_path / "teacher" / "a"
    teacher.mkdir(parents=True)
    import cv2

    cv2.imwrite(str(teacher / "00000.png"), np.full((48, 64), 128, np.uint8))
    base = ["train", "saliency", "--config", str(CONFIG / "train_saliency_tiny.yaml"), "--set", f"data_root={data}",
            "--set", "held_aside=[b]", "--set", f"teacher_root={tmp_path / 'teacher'}", "--set", "init=none"]
    out = tmp_path / "run"
    assert main(base + ["--out-dir", str(out), "--set", "stop_after=2"]) == 0
    assert main(base + ["--out-dir", str(out), "--resume", "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["step"] == 3 and summary["val_iou"] is not None
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert steps == [1, 2, 3]
    model, meta = load_saliency(out / "saliency.pt")
    assert meta["data"]["held_aside"] == ["b"] and meta["data"]["with_teacher_maps"] == 1
    assert "CC BY-NC 4.0" in meta["licence"]


def test_a_bad_annotation_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _davis_folder(tmp_path / "davis")
    (data / "a" / "Annotations" / "00001.png").write_bytes(b"not a png")
    args = ["train", "saliency", "--config", str(CONFIG / "train_saliency_tiny.yaml"), "--set", f"data_root={data}",
            "--set", "held_aside=[b]", "--set", "init=none", "--out-dir", str(tmp_path / "bad")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(data / "a" / "Annotations" / "00001.png") in err and "cannot decode" in err


@pytest.mark.timeout(120)
def test_teach_writes_u2netp_maps_that_find_a_salient_square_and_resumes(tmp_path: Path, capsys) -> None:
    import cv2

    data = tmp_path / "davis"
    for name in ("a", "b"):
        (data / name / "JPEGImages").mkdir(parents=True)
        (data / name / "Annotations").mkdir(parents=True)
        img = np.full((120, 160, 3), 235, np.uint8)
        img[40:90, 60:110] = (200, 20, 20)  # one red square on a plain light background
        mask = np.zeros((120, 160), np.uint8)
        mask[40:90, 60:110] = 255
        cv2.imwrite(str(data / name / "JPEGImages" / "00000.jpg"), img)
        cv2.imwrite(str(data / name / "Annotations" / "00000.png"), mask)
    out = tmp_path / "teacher"
    assert main(["saliency", "teach", str(data), str(out), "--step", "1", "--exclude", "b"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a/00000.png"]
    sal = cv2.imread(str(out / "a" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 127
    inter = np.count_nonzero(sal & (mask > 0))
    assert inter / np.count_nonzero(sal | (mask > 0)) > 0.6, "U^2-Net-p finds the square"
    assert main(["saliency", "teach", str(data), str(out), "--step", "1", "--exclude", "b"]) == 0
    assert "0 maps made, 1 were there" in capsys.readouterr().out


def test_score_reports_iou_per_sequence_and_names_a_bad_weights_file(tmp_path: Path, capsys) -> None:
    data = _davis_folder(tmp_path / "davis")
    torch.manual_seed(0)
    weights = save_saliency(tmp_path / "s.pt", SaliencyNet(SaliencyArch(width=8)), {}, half=False)
    assert main(["saliency", "score", str(data), "--weights", str(weights), "--step", "1",
                 "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert set(scores["sequences"]) == {"a", "b"} and 0.0 <= scores["mean"]["network"] <= 1.0
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 100)
    capsys.readouterr()
    assert main(["saliency", "score", str(data), "--weights", str(tmp_path / "bad.pt")]) == 2
    assert str(tmp_path / "bad.pt") in capsys.readouterr().err
