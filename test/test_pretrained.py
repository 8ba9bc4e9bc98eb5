"""The ImageNet MobileNetV2 loader: the installed file fills torchvision's features exactly, bad files are
named, and the features beat random ones by a clear margin on a real task (a linear probe on DAVIS frames)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from movseg_ros.model_files import ModelFileError
from movseg_ros.pretrained import (IMAGENET_MOBILENET_V2, U2NETP, installed_file, load_imagenet_mobilenet_v2,
                                   torchvision_mobilenet_v2_names)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN = Path(os.environ.get("MOVSEG_DAVIS_TRAIN", Path(__file__).resolve().parents[2] / "shared/data/davis2016-train"))


def test_the_installed_files_are_found() -> None:
    assert installed_file(IMAGENET_MOBILENET_V2).stat().st_size > 8_000_000
    assert installed_file(U2NETP).stat().st_size > 4_000_000


def test_every_tensor_of_the_file_lands_in_torchvision_features() -> None:
    raw = torch.load(installed_file(IMAGENET_MOBILENET_V2), map_location="cpu", weights_only=True)
    features = torchvision.models.mobilenet_v2().features
    load_imagenet_mobilenet_v2(features)
    own = features.state_dict()
    renamed = torchvision_mobilenet_v2_names(raw)
    assert set(renamed) == set(own)
    for key in ("0.0.weight", "1.conv.1.weight", "2.conv.1.0.weight", "17.conv.3.running_var", "18.1.bias"):
        assert torch.equal(own[key], renamed[key]), key


def test_the_first_blocks_load_alone() -> None:
    features = torchvision.models.mobilenet_v2().features[:7]
    load_imagenet_mobilenet_v2(features)
    raw = torch.load(installed_file(IMAGENET_MOBILENET_V2), map_location="cpu", weights_only=True)
    assert torch.equal(features[6].conv[2].weight, raw["features.6.conv.6.weight"])


def test_a_missing_key_a_wrong_shape_and_a_truncated_file_are_named(tmp_path: Path) -> None:
    raw = torch.load(installed_file(IMAGENET_MOBILENET_V2), map_location="cpu", weights_only=True)
    short = dict(raw)
    del short["features.3.conv.4.weight"]
    torch.save(short, tmp_path / "short.pt")
    with pytest.raises(ModelFileError, match="1 key\\(s\\) missing, e.g. 3.conv.1.1.weight") as e:
        load_imagenet_mobilenet_v2(torchvision.models.mobilenet_v2().features, tmp_path / "short.pt")
    assert str(tmp_path / "short.pt") in str(e.value)
    bent = dict(raw)
    bent["features.0.0.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(bent, tmp_path / "bent.pt")
    with pytest.raises(ModelFileError, match="shape"):
        load_imagenet_mobilenet_v2(torchvision.models.mobilenet_v2().features, tmp_path / "bent.pt")
    (tmp_path / "cut.pt").write_bytes(installed_file(IMAGENET_MOBILENET_V2).read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        load_imagenet_mobilenet_v2(torchvision.models.mobilenet_v2().features, tmp_path / "cut.pt")
    other = {"features.0.0.weight": raw["features.0.0.weight"], "features.1.block.0.weight": torch.zeros(1)}
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="1 unexpected key\\(s\\), e.g. 1.block.0.weight"):
        load_imagenet_mobilenet_v2(torchvision.models.mobilenet_v2().features, tmp_path / "other.pt")


def _frame(seq: str, i: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = cv2.imread(str(TRAIN / seq / "JPEGImages" / f"{i:05d}.jpg"))[..., ::-1]
    mask = cv2.imread(str(TRAIN / seq / "Annotations" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
    return cv2.resize(rgb, (256, 144), interpolation=cv2.INTER_AREA), mask


def _probe_iou(features: torch.nn.Module, seq: str) -> float:
    """A linear probe on stride-8 features, fitted on frame 0's mask, scored (IoU) on frames 10, 20, 30."""
    def feats(rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float()[None] / 255
        x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with torch.no_grad():
            return features(x)[0]

    rgb, mask = _frame(seq, 0)
    f0 = feats(rgb)
    c, h, w = f0.shape
    x0 = f0.reshape(c, -1).T
    mu, sd = x0.mean(0), x0.std(0) + 1e-5
    y = torch.from_numpy(cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)).reshape(-1)
    pos = y.mean().clamp(0.05, 0.95)
    probe = torch.nn.Linear(c, 1)
    opt = torch.optim.Adam(probe.parameters(), 0.05)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(probe((x0 - mu) / sd)[:, 0], y, pos_weight=(1 - pos) / pos).backward()
        opt.step()
    ious = []
    for i in (10, 20, 30):
        rgb, mask = _frame(seq, i)
        with torch.no_grad():
            p = torch.sigmoid(probe((feats(rgb).reshape(c, -1).T - mu) / sd)[:, 0]).reshape(h, w).numpy()
        pred = cv2.resize(p, (mask.shape[1], mask.shape[0])) > 0.5
        ious.append(np.count_nonzero(pred & mask) / max(1, np.count_nonzero(pred | mask)))
    return float(np.mean(ious))


@pytest.mark.timeout(120)
def test_imagenet_features_beat_random_ones_on_a_davis_probe() -> None:
    if not TRAIN.is_dir():
        pytest.skip(f"DAVIS-2016 train set not found at {TRAIN} (set MOVSEG_DAVIS_TRAIN)")
    scores = {}
    for init in ("imagenet", "random"):
        torch.manual_seed(0)
        features = torchvision.models.mobilenet_v2().features[:7].eval()
        if init == "imagenet":
            load_imagenet_mobilenet_v2(features)
        scores[init] = np.mean([_probe_iou(features, s) for s in ("bear", "boat", "elephant", "flamingo", "car-turn")])
    assert scores["imagenet"] > scores["random"] + 0.1, scores  # measured 0.54 against 0.30
