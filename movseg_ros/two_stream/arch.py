"""The architecture settings a two-stream checkpoint is rebuilt from (recorded in its meta)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

BACKBONES = ("mobilenet_v3", "mobilenet_v2", "resnet18", "resnet50")
NORMS = ("group_norm", "frozen_bn", "batch_norm")
KINDS = ("motion", "appearance", "two_stream")
MOTION_INPUTS = ("flow", "residual")  # what the motion stream sees: the flow, or the flow minus the camera's
MASK_FEATURES = ("appearance", "fused")  # what the joint model's mask head reads


class ArchError(ValueError):
    """Architecture settings that cannot build a model; the message names the setting."""


@dataclass(frozen=True)
class DetectorArch:
    """Backbone and head sizes shared by the motion, appearance and two-stream models.

    `light()` is the CPU default (MobileNetV3-FPN, narrow heads, group norm so it trains from scratch
    at batch 2); `imagenet()` the same heads on MobileNetV2-FPN with frozen batch norm, for ImageNet
    initialisation; `paper()` is seed 000's R-50-FPN with torchvision's Mask R-CNN head sizes and frozen
    batch norm, so torchvision's COCO weights load into it.
    """

    backbone: str = "mobilenet_v3"
    norm: str = "group_norm"
    fpn_channels: int = 128  # width of every FPN level (and of the fused features)
    representation_size: int = 256  # box head's two fully connected layers
    mask_layers: int = 4  # 3x3 convolutions of the mask head, each fpn_channels wide
    fusion_layers: int = 2  # the short convolution stack that reduces [appearance, motion] to fpn_channels
    motion_input: str = "flow"  # flow: seed 000's flow image; residual: the same image of the flow minus the camera's
    #   homography (what moves independently of the camera; files without the setting are "flow")
    mask_features: str = "appearance"  # the joint model's mask head reads appearance (seed 000) or the fused features

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ArchError(f"backbone '{self.backbone}' is not one of {', '.join(BACKBONES)}")
        if self.norm not in NORMS:
            raise ArchError(f"norm '{self.norm}' is not one of {', '.join(NORMS)}")
        if self.fpn_channels < 8 or self.fpn_channels % 8:
            raise ArchError(f"fpn_channels must be a multiple of 8 (>= 8), got {self.fpn_channels}")
        if self.representation_size < 8:
            raise ArchError(f"representation_size must be >= 8, got {self.representation_size}")
        if not 1 <= self.mask_layers <= 8:
            raise ArchError(f"mask_layers must be in [1, 8], got {self.mask_layers}")
        if not 1 <= self.fusion_layers <= 4:
            raise ArchError(f"fusion_layers must be in [1, 4], got {self.fusion_layers}")
        if self.mask_features not in MASK_FEATURES:
            raise ArchError(f"mask_features '{self.mask_features}' is not one of {', '.join(MASK_FEATURES)}")
        if self.motion_input not in MOTION_INPUTS:
            raise ArchError(f"motion_input '{self.motion_input}' is not one of {', '.join(MOTION_INPUTS)}")

    @classmethod
    def light(cls) -> "DetectorArch":
        return cls()

    @classmethod
    def imagenet(cls) -> "DetectorArch":
        """MobileNetV2-FPN with frozen batch norm: the layout the installed ImageNet features load into."""
        return cls(backbone="mobilenet_v2", norm="frozen_bn")

    @classmethod
    def paper(cls) -> "DetectorArch":
        return cls(backbone="resnet50", norm="frozen_bn", fpn_channels=256, representation_size=1024, mask_layers=4)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DetectorArch":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ArchError(f"unknown architecture setting(s) {unknown}; known: {', '.join(sorted(names))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def arch_name(kind: str) -> str:
    """The "arch" string our checkpoint format records for a model kind."""
    if kind not in KINDS:
        raise ArchError(f"model kind '{kind}' is not one of {', '.join(KINDS)}")
    return f"{kind}_mask_rcnn"
