"""DavisDetectionData: DAVIS-layout frames as Mask R-CNN training items with cached DIS flow."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.flow import DISFlow
from movseg_ros.two_stream.data import collate
from movseg_ros.two_stream.davis_data import DavisDetectionData, augment_frame, mask_instances

DAVIS = Path("/work/shared/data/davis2016-train")
W, H, SIDE, X0, Y0 = 64, 48, 16, 14, 16  # the square starts at (X0, Y0) and moves right 2 px a frame


def write_sequence(root: Path, name: str, frames: int = 4) -> None:
    """A textured square on a smooth background moving right by 2 px a frame, and its masks."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (SIDE, SIDE, 3)).astype(np.uint8)
    background = np.dstack([np.tile(np.linspace(60, 140, W), (H, 1))] * 3).astype(np.uint8)
    (root / name / "JPEGImages").mkdir(parents=True)
    (root / name / "Annotations").mkdir(parents=True)
    for t in range(frames):
        image, mask = background.copy(), np.zeros((H, W), np.uint8)
        x = X0 + 2 * t
        image[Y0:Y0 + SIDE, x:x + SIDE] = texture
        mask[Y0:Y0 + SIDE, x:x + SIDE] = 255
        cv2.imwrite(str(root / name / "JPEGImages" / f"{t:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / name / "Annotations" / f"{t:05d}.png"), mask)


@pytest.fixture
def davis(tmp_path: Path) -> Path:
    root = tmp_path / "davis"
    write_sequence(root, "alpha", 4)
    write_sequence(root, "beta", 3)
    return root


@pytest.fixture
def dis_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts DISFlow calls."""
    calls: list[int] = []
    real = DISFlow.__call__

    def counted(self, a, b):
        calls.append(1)
        return real(self, a, b)

    monkeypatch.setattr(DISFlow, "__call__", counted)
    return calls


@pytest.mark.parametrize("kind, channels", [("appearance", 3), ("motion", 3), ("two_stream", 6)])
def test_items_have_the_synthetic_format_at_the_work_width(davis: Path, kind: str, channels: int,
                                                           dis_calls: list[int]) -> None:
    data = DavisDetectionData(davis, kind, work_width=32, augment=False)
    assert len(data) == 3 + 2  # every frame with a previous one
    item = data[0]
    assert item["input"].shape == (channels, 24, 32) and item["input"].dtype == torch.float32
    target = item["target"]
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (1, 4)
    assert target["masks"].dtype == torch.uint8 and target["masks"].shape == (1, 24, 32)
    assert target["labels"].tolist() == [1] and target["labels"].dtype == torch.int64
    assert target["moving"].tolist() == [True]
    assert isinstance(item["seed"], int)
    assert len(dis_calls) == (0 if kind == "appearance" else 1)  # no flow for the appearance model
    batch = collate([data[0], data[1]])
    assert len(batch["inputs"]) == 2 and len(batch["targets"]) == 2


def test_box_is_xyxy_with_exclusive_max(davis: Path) -> None:
    target = DavisDetectionData(davis, "appearance", work_width=W, augment=False)[0]["target"]  # frame 1
    assert target["boxes"].tolist() == [[X0 + 2, Y0, X0 + 2 + SIDE, Y0 + SIDE]]
    assert int(target["masks"].sum()) == SIDE * SIDE


def test_flow_points_right_and_left_once_flipped(davis: Path) -> None:
    plain = DavisDetectionData(davis, "motion", work_width=W, augment=False)
    flow, mask = plain.flow(0), plain.frame(0)[1]
    assert flow[mask, 0].mean() > 0.5 and abs(flow[mask, 1].mean()) < 0.5
    angle = plain[0]["input"][0][torch.from_numpy(mask)]  # flow image: angle / 2pi; rightwards is ~0 (or ~1)
    assert (angle - 0.5).abs().median() > 0.35
    augmented = DavisDetectionData(davis, "motion", work_width=W, augment=True)
    item = next(it for it in (augmented[i] for i in range(len(augmented))) if it["augment"]["flip"])
    assert 0.8 <= item["augment"]["scale"] <= 1.25
    m = item["target"]["masks"][0].bool()
    assert (item["input"][0][m] - 0.5).abs().median() < 0.15  # pointing left


def test_augmentation_scales_flow_and_negates_x_on_flip() -> None:
    rgb = np.full((90, 160, 3), 128, np.uint8)
    mask = np.zeros((90, 160), bool)
    mask[30:60, 60:100] = True
    flow = np.dstack([np.full((90, 160), 2.0, np.float32), np.full((90, 160), 1.0, np.float32)])
    seen = set()
    for i in range(12):
        out_rgb, out_mask, out_flow, chosen = augment_frame(rgb, mask, flow, np.random.default_rng([0, i]))
        assert out_rgb.shape == rgb.shape and out_mask.shape == mask.shape and out_flow.shape == flow.shape
        s = chosen["scale"]
        x, y = out_flow[out_mask].mean(0)
        assert x == pytest.approx(-2 * s if chosen["flip"] else 2 * s, rel=1e-3) and y == pytest.approx(s, rel=1e-3)
        assert abs(out_mask.sum() / mask.sum() - s * s) < 0.15 * s * s  # nearest zoom of the mask (all inside)
        seen.add((chosen["flip"], s > 1))
    assert len(seen) == 4  # flips and no flips, zoom in and out


def test_dataset_pickles_after_use(davis: Path) -> None:
    data = DavisDetectionData(davis, "motion", work_width=W, augment=False)
    first = data[0]["input"]
    assert torch.equal(pickle.loads(pickle.dumps(data))[0]["input"], first)  # as spawned DataLoader workers get it


def test_near_components_are_one_instance_far_ones_two() -> None:
    mask = np.zeros((180, 320), bool)
    mask[20:60, 20:60] = True
    mask[120:170, 250:300] = True
    assert len(mask_instances(mask)) == 2
    cut = np.zeros((180, 320), bool)
    cut[40:140, 100:160] = True
    cut[90, 100:160] = False  # a thin occluder
    assert len(mask_instances(cut)) == 1
    assert len(mask_instances(cut, group_gap=0.0)) == 2
    assert mask_instances(np.zeros((180, 320), bool)) == []
    tiny = np.zeros((180, 320), bool)
    tiny[5:8, 5:8] = True
    assert mask_instances(tiny, min_pixels=16) == []


def test_empty_mask_gives_an_empty_target(davis: Path) -> None:
    for png in (davis / "beta" / "Annotations").glob("*.png"):
        cv2.imwrite(str(png), np.zeros((H, W), np.uint8))
    target = DavisDetectionData(davis, "appearance", sequences=["beta"], augment=False)[0]["target"]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, H, W) and target["labels"].shape == (0,)


def test_items_are_a_function_of_seed_and_index(davis: Path) -> None:
    a = DavisDetectionData(davis, "two_stream", work_width=W, seed=3)
    b = DavisDetectionData(davis, "two_stream", work_width=W, seed=3)
    first, again = a[2], b[2]
    assert torch.equal(first["input"], again["input"]) and first["augment"] == again["augment"]
    assert torch.equal(first["target"]["masks"], again["target"]["masks"])
    other = DavisDetectionData(davis, "two_stream", work_width=W, seed=4)[2]
    assert other["augment"] != first["augment"] and not torch.equal(other["input"], first["input"])


def test_flow_cache_is_reused_and_a_corrupt_file_recomputed(davis: Path, tmp_path: Path, dis_calls: list[int]) -> None:
    cache = tmp_path / "cache"
    data = DavisDetectionData(davis, "motion", work_width=W, cache_dir=cache)
    data.precompute(progress=False)
    assert len(dis_calls) == len(data)
    path = cache / f"medium_w{W}" / "alpha" / "00001.npy"
    stored = np.load(path)
    assert stored.dtype == np.float16 and stored.shape == (H, W, 2)
    assert not list(cache.rglob("*.tmp"))
    fresh = DavisDetectionData(davis, "motion", work_width=W, cache_dir=cache, augment=False)
    before = [fresh[i]["input"] for i in range(len(fresh))]
    assert len(dis_calls) == len(data)  # all read from the cache
    path.write_bytes(b"not a numpy file")
    assert torch.equal(fresh[0]["input"], before[0])
    assert len(dis_calls) == len(data) + 1
    assert np.array_equal(np.load(path), stored)
    np.save(path, np.zeros((4, 4, 2), np.float16))  # the wrong shape: recomputed too
    fresh[0]
    assert len(dis_calls) == len(data) + 2


def test_missing_annotation_names_the_file(davis: Path) -> None:
    (davis / "alpha" / "Annotations" / "00002.png").unlink()
    with pytest.raises(DatasetError, match="00002.png"):
        DavisDetectionData(davis, "motion")


def test_mask_of_another_size_names_the_file(davis: Path) -> None:
    bad = davis / "alpha" / "Annotations" / "00001.png"
    cv2.imwrite(str(bad), np.zeros((H // 2, W // 2), np.uint8))
    data = DavisDetectionData(davis, "two_stream", augment=False)
    with pytest.raises(DatasetError) as e:
        data[0]  # frame 00001 of alpha
    assert e.value.path == bad


def test_missing_frames_are_not_skipped_silently(davis: Path) -> None:
    (davis / "alpha" / "JPEGImages" / "00001.jpg").unlink()
    (davis / "alpha" / "Annotations" / "00001.png").unlink()
    with pytest.raises(DatasetError, match="00001.jpg"):  # a gap in the numbering
        DavisDetectionData(davis, "motion")
    (davis / "beta" / "JPEGImages" / "00002.jpg").unlink()  # the last frame, its annotation kept
    with pytest.raises(DatasetError, match="00002.jpg"):
        DavisDetectionData(davis, "motion", sequences=["beta"])


def test_bad_kind_is_refused(davis: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        DavisDetectionData(davis, "optical")


@pytest.mark.skipif(not (DAVIS / "bear").is_dir(), reason="DAVIS 2016 training set not here")
def test_real_davis_bear_item() -> None:
    data = DavisDetectionData(DAVIS, "two_stream", sequences=["bear"], augment=False)
    item = data[10]
    assert item["input"].shape == (6, 180, 320)
    assert len(item["target"]["boxes"]) >= 1 and item["target"]["masks"].shape[1:] == (180, 320)
