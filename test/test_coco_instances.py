"""COCO instances files as a one-class ("object") detection Dataset: polygons and RLE, filtering, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torch.utils.data import DataLoader

from movseg_ros.datasets.coco_instances import CocoInstances, collate_detection
from movseg_ros.datasets.errors import DatasetError
from movseg_ros.two_stream.arch import DetectorArch
from movseg_ros.two_stream.models import build_single_stream

W, H = 40, 30


def _disc(cx: float, cy: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[:H, :W]
    return ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r).astype(np.uint8)


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def make_coco(root: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Three images (RGB with objects, grey without, RGBA with one) and their annotations file."""
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pixels = {"rgb": rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
              "grey": rng.integers(0, 256, (H, W), dtype=np.uint8),
              "rgba": rng.integers(0, 256, (H, W, 4), dtype=np.uint8)}
    for name, array in pixels.items():
        Image.fromarray(array).save(images / f"{name}.png")
    disc, small, crowd = _disc(28, 15, 6), _disc(5, 25, 1.5), _disc(10, 20, 5)
    data = {
        "images": [{"id": 7, "file_name": "rgb.png", "width": W, "height": H},
                   {"id": 8, "file_name": "grey.png", "width": W, "height": H},
                   {"id": 9, "file_name": "rgba.png", "width": W, "height": H}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0, "bbox": [2, 3, 10, 7], "area": 70,
             "segmentation": [[2, 3, 12, 3, 12, 10, 2, 10]]},  # polygon: pixels x 2..11, y 3..9
            {"id": 2, "image_id": 7, "category_id": 18, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1,
             "segmentation": _rle(disc)},
            {"id": 3, "image_id": 7, "category_id": 3, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1,
             "segmentation": _rle(small)},  # under 16 pixels: left out
            {"id": 4, "image_id": 7, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 1, 1], "area": 1,
             "segmentation": _rle(crowd)},  # crowd: left out
            {"id": 5, "image_id": 9, "category_id": 44, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1,
             "segmentation": _rle(crowd)},
        ],
        "categories": [{"id": k, "name": str(k)} for k in (1, 3, 18, 44)],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    assert small.sum() < 16 <= crowd.sum()
    return path, images, {**pixels, "disc": disc, "small": small, "crowd": crowd}


def test_items_merge_categories_and_decode_polygons_and_rle(tmp_path: Path) -> None:
    path, images, truth = make_coco(tmp_path)
    ds = CocoInstances(path, images)
    assert len(ds) == 3 and ds.image_ids == [7, 8, 9]
    item = ds[0]
    assert item["image_id"] == 7 and item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert torch.equal(item["image"], torch.from_numpy(truth["rgb"]).permute(2, 0, 1).float() / 255)
    target = item["target"]
    assert target["labels"].tolist() == [1, 1] and target["labels"].dtype == torch.int64
    assert target["masks"].shape == (2, H, W) and target["masks"].dtype == torch.uint8
    rect = np.zeros((H, W), np.uint8)
    rect[3:10, 2:12] = 1
    assert np.array_equal(target["masks"][0].numpy(), rect)
    assert np.array_equal(target["masks"][1].numpy(), truth["disc"])
    ys, xs = np.nonzero(truth["disc"])
    assert target["boxes"].tolist() == [[2, 3, 12, 10], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
    assert target["boxes"].dtype == torch.float32


def test_images_without_usable_objects_stay_and_colour_modes_convert(tmp_path: Path) -> None:
    path, images, truth = make_coco(tmp_path)
    ds = CocoInstances(path, images)
    grey = ds[1]
    assert grey["target"]["boxes"].shape == (0, 4) and grey["target"]["masks"].shape == (0, H, W)
    assert grey["target"]["labels"].shape == (0,) and grey["target"]["labels"].dtype == torch.int64
    assert grey["image"].shape == (3, H, W)
    assert torch.equal(grey["image"][2], torch.from_numpy(truth["grey"]).float() / 255)
    rgba = ds[-1]
    assert torch.equal(rgba["image"], torch.from_numpy(truth["rgba"][..., :3]).permute(2, 0, 1).float() / 255)
    assert np.array_equal(rgba["target"]["masks"][0].numpy(), truth["crowd"])
    # min_area counts decoded mask pixels: the tiny disc comes back when allowed, the polygon goes when not
    assert len(CocoInstances(path, images, min_area=1)[0]["target"]["boxes"]) == 3
    assert len(CocoInstances(path, images, min_area=71)[0]["target"]["boxes"]) == int(truth["disc"].sum() >= 71)


def test_batches_train_a_torchvision_mask_rcnn(tmp_path: Path) -> None:
    path, images, _ = make_coco(tmp_path)
    loader = DataLoader(CocoInstances(path, images), batch_size=3, collate_fn=collate_detection)
    batch_images, targets = next(iter(loader))
    assert isinstance(batch_images, list) and len(batch_images) == len(targets) == 3
    assert [len(t["boxes"]) for t in targets] == [2, 0, 1]
    torch.manual_seed(0)
    model = build_single_stream(DetectorArch.light(), "appearance", min_size=64, max_size=96).train()
    losses = model(batch_images, targets)
    assert {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


def test_bad_annotation_files_are_named(tmp_path: Path) -> None:
    images = tmp_path / "images"
    with pytest.raises(DatasetError, match="no such annotations file") as e:
        CocoInstances(tmp_path / "missing.json", images)
    assert "missing.json" in str(e.value)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="not JSON") as e:
        CocoInstances(bad, images)
    assert str(bad) in str(e.value)
    bad.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(DatasetError, match="not a COCO instances file") as e:
        CocoInstances(bad, images)
    assert str(bad) in str(e.value)
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 4}], "annotations": []}))
    with pytest.raises(DatasetError, match="lacks height"):
        CocoInstances(bad, images)


def test_bad_image_files_name_the_file_and_the_image_id(tmp_path: Path) -> None:
    path, images, _ = make_coco(tmp_path)
    (images / "grey.png").unlink()
    (images / "rgba.png").write_bytes(b"not a png at all")
    Image.fromarray(np.zeros((H, W + 1, 3), np.uint8)).save(images / "rgb.png")
    ds = CocoInstances(path, images)
    cases = [(0, "rgb.png", "7", "41x30 but the annotations say 40x30"), (1, "grey.png", "8", "no such image file"),
             (2, "rgba.png", "9", "cannot read")]
    for index, name, image_id, problem in cases:
        with pytest.raises(DatasetError) as e:
            ds[index]
        message = str(e.value)
        assert name in message and f"image id {image_id}" in message and problem in message
        assert e.value.path == images / name
