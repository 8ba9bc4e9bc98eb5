"""`movseg train appearance`: seed 000's "objectness" Mask R-CNN on RGB, every category merged into one.

Data: image instance data in COCO format (`data: coco`, categories merged into "object" when read), the
synthetic generator's frames with every object labelled, moving or static (`data: synth`), or DAVIS-2016
train's objects mixed one to one with the generator's (`data: davis`; no COCO here). With
`init_coco_weights` the run starts from torchvision's COCO-pretrained Mask R-CNN R-50-FPN file (if you
have one), its 90-class heads turned into objectness heads (needs `arch` = the paper's R-50-FPN).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset, Dataset, Subset

from movseg_ros.training.detector_loop import DetectorTrainConfig, detector_plan, train_detector
from movseg_ros.training.loop import StagePlan
from movseg_ros.two_stream.arch import DetectorArch
from movseg_ros.two_stream.data import SynthDetectionData
from movseg_ros.two_stream.weights import build_model

DATA_KINDS = ("synth", "coco", "davis")


@dataclass(frozen=True)
class AppearanceTrainConfig(DetectorTrainConfig):
    """The shared settings, plus where the instance data comes from."""

    data: str = "synth"  # synth (generated frames, every object) | coco (coco_annotations + coco_images) |
    #                      davis (the objects of `davis` mixed with the generator's, one to one)
    coco_annotations: str = ""  # COCO instances JSON (data: coco)
    coco_images: str = ""  # folder its file_names are relative to (data: coco)
    coco_val_annotations: str = ""  # held-out COCO JSON scored at checkpoints (data: coco; empty: no scoring)
    coco_val_images: str = ""
    init_coco_weights: str = ""  # torchvision maskrcnn_resnet50_fpn COCO weights to start from (arch: the paper's)
    out_dir: str = "out/train/appearance"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.need(self.data in DATA_KINDS, "data", f"'{self.data}' is not one of {', '.join(DATA_KINDS)}")
        if self.data == "davis":
            self.need(bool(self.davis), "davis", "is needed with data: davis (a DAVIS-layout training folder)")
        if self.data == "coco":
            self.need(bool(self.coco_annotations and self.coco_images), "coco_annotations/coco_images",
                      "are both needed with data: coco")
        if self.init_coco_weights:
            self.need(self.detector_arch() == DetectorArch.paper(), "init_coco_weights",
                      f"needs the paper's architecture (arch: {DetectorArch.paper().to_dict()}), the layout of "
                      f"torchvision's COCO Mask R-CNN; got {self.detector_arch().to_dict()}")


CONFIG = AppearanceTrainConfig


class _CocoItems(Dataset):
    """CocoInstances items as the loop takes them ({"input", "target"})."""

    def __init__(self, annotations: str, images: str) -> None:
        from movseg_ros.datasets.coco_instances import CocoInstances

        self.data = CocoInstances(Path(annotations), Path(images))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.data[index]
        return {"input": item["image"], "target": item["target"], "seed": item["image_id"]}


def plan(config: AppearanceTrainConfig) -> StagePlan:
    arch = config.detector_arch()
    if config.init_coco_weights:
        from movseg_ros.two_stream.coco_weights import load_coco_objectness

        model = load_coco_objectness(config.init_coco_weights)
        model.transform.min_size = (config.min_size,)
        model.train()
    else:
        model = build_model("appearance", arch, config.min_size)
    init = {} if config.init_coco_weights else config.init_model(model)
    if config.data == "davis":
        davis = config.davis_data("appearance")
        synth = SynthDetectionData(config.synth_config(), range(*config.train_seeds), "appearance")
        train = ConcatDataset([davis, Subset(synth, range(len(davis)))])  # as many generated frames as real ones
        val = config.davis_data("appearance", train=False)
        source = {"davis": config.davis, "synth": "every object, moving or static, is an 'object'", "mix": "1:1"}
    elif config.data == "coco":
        train: Dataset = _CocoItems(config.coco_annotations, config.coco_images)
        val = _CocoItems(config.coco_val_annotations, config.coco_val_images) if config.coco_val_annotations else None
        source: dict[str, Any] = {"coco_annotations": config.coco_annotations, "coco_images": config.coco_images}
    else:
        synth = config.synth_config()
        train = SynthDetectionData(synth, range(*config.train_seeds), "appearance")
        val = SynthDetectionData(synth, range(*config.heldout_seeds), "appearance")
        source = {"synth": "every object, moving or static, is an 'object'"}
    return detector_plan(config, "appearance", "appearance", model, [(0, train)], val,
                     meta={"objectness_data": source, "init_coco_weights": config.init_coco_weights or None,
                           "init": init})


def train(config: AppearanceTrainConfig, command: str = "") -> dict[str, Any]:
    return train_detector(config, plan, command)
