"""torchvision's COCO Mask R-CNN layout -> our one-class objectness model: averaged rows, strict load, clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torchvision.models import mobilenet_v3_small
from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

from movseg_ros.model_files import ModelFileError, load_into
from movseg_ros.two_stream.arch import DetectorArch
from movseg_ros.two_stream.coco_weights import (CLASS_LAYERS, load_coco_objectness, named_coco_classes,
                                                objectness_from_coco)
from movseg_ros.two_stream.models import build_single_stream
from movseg_ros.two_stream.weights import build_model, save_model


@pytest.fixture(scope="module")
def coco_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """An untrained torchvision maskrcnn_resnet50_fpn saved as a plain state dict (the published file's layout);
    the class-specific rows get distinct random values so averages and row choices are visible."""
    torch.manual_seed(0)
    state = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()
    for layer in CLASS_LAYERS:
        for part in ("weight", "bias"):
            state[f"{layer}.{part}"] = torch.randn_like(state[f"{layer}.{part}"])
    path = tmp_path_factory.mktemp("coco") / "maskrcnn_resnet50_fpn_coco.pth"
    torch.save(state, path)
    return path, state


def _rows(state: dict[str, torch.Tensor], key: str, rows: int) -> torch.Tensor:
    value = state[key]
    return value.reshape(value.shape[0] // rows, rows, *value.shape[1:])


def test_object_rows_are_the_mean_of_the_foreground_rows(coco_file) -> None:
    path, state = coco_file
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (91, 1024)
    converted = objectness_from_coco(state, path)
    for layer, rows in CLASS_LAYERS.items():
        for part in ("weight", "bias"):
            key = f"{layer}.{part}"
            before, after = _rows(state, key, rows), _rows(converted, key, rows)
            assert after.shape[0] == 2
            assert torch.equal(after[0], before[0])  # background stays
            expected = before[1:].mean(0) + (math.log(90) if key.endswith("cls_score.bias") else 0.0)
            torch.testing.assert_close(after[1], expected)
            assert not torch.allclose(after[1], before[1])  # not just the first class
    assert not any(k.endswith("num_batches_tracked") for k in converted)
    for key in ("backbone.body.conv1.weight", "backbone.body.layer4.2.bn3.running_var",
                "backbone.fpn.layer_blocks.3.0.weight", "rpn.head.cls_logits.weight", "roi_heads.box_head.fc7.weight",
                "roi_heads.mask_head.3.0.weight"):
        assert torch.equal(converted[key], state[key])
    model = build_single_stream(DetectorArch.paper(), "appearance")
    load_into(model, converted, path)  # strict: every key and shape fits


def test_averaging_only_the_named_coco_classes(coco_file) -> None:
    path, state = coco_file
    named = named_coco_classes()
    assert len(named) == 80 and 0 not in named and 12 not in named  # 12 is one of COCO's unused ids
    converted = objectness_from_coco(state, path, classes=named)
    before = state["roi_heads.box_predictor.cls_score.weight"]
    torch.testing.assert_close(converted["roi_heads.box_predictor.cls_score.weight"][1], before[named].mean(0))
    with pytest.raises(ModelFileError, match="1..90"):
        objectness_from_coco(state, path, classes=[0, 5])


def test_loaded_model_holds_the_converted_weights_and_runs(coco_file) -> None:
    path, state = coco_file
    model = load_coco_objectness(path, min_size=128)
    assert isinstance(model, MaskRCNN) and not model.training
    own = model.state_dict()
    fg = state["roi_heads.mask_predictor.mask_fcn_logits.weight"][1:].mean(0)
    torch.testing.assert_close(own["roi_heads.mask_predictor.mask_fcn_logits.weight"][1], fg)
    assert torch.equal(own["roi_heads.box_head.fc6.weight"], state["roi_heads.box_head.fc6.weight"])
    torch.manual_seed(1)
    with torch.no_grad():
        (out,) = model([torch.rand(3, 128, 160)])
    n = len(out["boxes"])
    assert out["boxes"].shape == (n, 4) and out["masks"].shape == (n, 1, 128, 160)
    assert set(out["labels"].tolist()) <= {1}


def test_truncated_file_is_a_clear_error(coco_file, tmp_path: Path) -> None:
    path, _ = coco_file
    bad = tmp_path / "truncated.pth"
    with open(path, "rb") as f:
        bad.write_bytes(f.read(1 << 20))
    with pytest.raises(ModelFileError, match="truncated") as e:
        load_coco_objectness(bad)
    assert str(bad) in str(e.value)


def test_a_resnet18_mask_rcnn_does_not_fit(tmp_path: Path) -> None:
    model = MaskRCNN(resnet_fpn_backbone(backbone_name="resnet18", weights=None), num_classes=91)
    path = tmp_path / "maskrcnn_resnet18_fpn.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(ModelFileError, match="do not match") as e:
        load_coco_objectness(path)
    assert str(path) in str(e.value) and "backbone.body.layer" in str(e.value)


def test_not_a_mask_rcnn_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "classifier.pth"
    torch.save(mobilenet_v3_small(weights=None).state_dict(), path)
    with pytest.raises(ModelFileError, match="not a Mask R-CNN") as e:
        load_coco_objectness(path)
    assert str(path) in str(e.value) and "cls_score" in str(e.value)


def test_a_movseg_checkpoint_is_pointed_to_load_model(tmp_path: Path) -> None:
    arch = DetectorArch.light()
    path = save_model(tmp_path / "appearance.pt", "appearance", build_model("appearance", arch), arch, {})
    with pytest.raises(ModelFileError, match="load_model") as e:
        load_coco_objectness(path)
    assert str(path) in str(e.value)
