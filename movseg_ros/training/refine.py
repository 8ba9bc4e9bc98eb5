"""`movseg train refine`: the geometric pipeline's learned refinement (issue 13, item 4).

The pipeline (the shipped settings, refinement off) runs online over DAVIS-2016 train; each frame's maps
and mask are recorded once (cached), and a small network learns to correct the hand-made fusion. The
held-aside sequences are never trained on; their mean frame IoU, against the fusion's own, is the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from movseg_ros.training.common import TrainConfigError
from movseg_ros.training.loop import LoopConfig, StagePlan, train_stage
from movseg_ros.training.saliency_folds import fold_assignment
from movseg_ros.tuning.data import HELD_ASIDE

TERMS = ("bce", "soft_iou")


@dataclass(frozen=True)
class RefineTrainConfig(LoopConfig):
    """The loop's settings plus data, the pipeline whose maps are recorded, network size and loss weights."""

    data_root: str = "../shared/data/davis2016-train"
    held_aside: tuple[str, ...] = HELD_ASIDE  # sequences never trained on: the held-out score
    sequences: tuple[str, ...] = ()  # train on these only (default: every sequence not held aside)
    pipeline_config: str = ""  # YAML of the pipeline whose maps are recorded ("" = the shipped defaults)
    cache_dir: str = "out/refine_cache"  # recorded maps, one file a sequence ("" = record every run)
    # saliency files that each never trained on some of the training sequences (their meta's held_aside): every
    # training sequence is recorded with one that never saw it, so the network learns from maps as good as on
    # new video ("out-of-fold"); () = the pipeline's own saliency file for every sequence
    fold_saliency: tuple[str, ...] = ()
    width: int = 16
    scale: float = 0.25
    rgb: bool = True  # the network also reads the frame's colours
    iou_weight: float = 1.0
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    batch_size: int = 8
    val_images: int = 1000  # held-aside frames scored (every frame up to this many)
    out_dir: str = "out/train/refine"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.need(4 <= self.width <= 128, "width", f"must be in [4, 128], got {self.width}")
        self.need(0.1 <= self.scale <= 1.0, "scale", f"must be in [0.1, 1.0], got {self.scale}")
        self.need(self.iou_weight >= 0, "iou_weight", f"must be >= 0, got {self.iou_weight}")

    def export_path(self) -> Path:
        return Path(self.export) if self.export else Path(self.out_dir) / "refine_geometric.pt"


CONFIG = RefineTrainConfig


def _losses(config: RefineTrainConfig):
    def losses(net: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        logits = net(batch["features"].to(device), batch["fused"].to(device))
        truth, weight = batch["truth"].to(device), batch["weight"].to(device)
        bce = F.binary_cross_entropy_with_logits(logits, truth, weight=weight, reduction="sum") / weight.sum().clamp(min=1)
        p = torch.sigmoid(logits) * weight
        inter = (p * truth).sum((1, 2, 3))
        union = (p + truth * weight - p * truth).sum((1, 2, 3))
        soft_iou = (1 - (inter + 1) / (union + 1)).mean()
        return {"bce": bce, "soft_iou": config.iou_weight * soft_iou}

    return losses


def frame_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of a binary prediction against a RefineItem truth (VOID left out); 1 when both are empty."""
    keep = truth != 255
    obj = truth == 1
    union = np.count_nonzero((pred | obj) & keep)
    return 1.0 if union == 0 else np.count_nonzero(pred & obj & keep) / union


@torch.no_grad()
def held_out_iou(model: nn.Module, items: list, device: torch.device) -> dict[str, Any]:
    """Mean frame IoU of the refined map (p > 0.5) and of the fusion alone on held-aside frames."""
    was = model.training
    model.eval()
    refined, fused = [], []
    for item in items:
        logits = model(torch.from_numpy(item.features.astype(np.float32))[None].to(device),
                       torch.from_numpy(item.fused.astype(np.float32))[None, None].to(device))[0, 0]
        refined.append(frame_iou((logits > 0).cpu().numpy(), item.truth))
        fused.append(frame_iou(item.fused > 0.5, item.truth))
    model.train(was)
    if not items:
        return {"val_iou": None, "val_iou_fused": None}
    return {"val_iou": float(np.mean(refined)), "val_iou_fused": float(np.mean(fused))}


def _pipeline_config(config: RefineTrainConfig):
    from movseg_ros.pipeline import PipelineConfig

    if not config.pipeline_config:
        return PipelineConfig()
    from movseg_ros.config_io import load_pipeline_config

    return load_pipeline_config(Path(config.pipeline_config))


def _with_saliency(pipeline, weights: str):
    """`pipeline` with geometric.saliency_weights set to `weights`."""
    from movseg_ros.pipeline import PipelineConfig

    d = pipeline.to_dict()
    d.setdefault("geometric", {})["saliency_weights"] = weights
    return PipelineConfig.from_dict(d)


def plan(config: RefineTrainConfig) -> StagePlan:
    from movseg_ros.datasets.errors import DatasetError
    from movseg_ros.refine.data import RefineFrames, collate_refine, fingerprint, recorded
    from movseg_ros.refine.network import RefineArch, build_refine, save_refine

    root = Path(config.data_root)
    if not root.is_dir():
        raise DatasetError(root, "no such data folder (data_root)")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    unknown = sorted(set(config.held_aside) - set(names))
    if unknown:
        raise DatasetError(root, f"held_aside names sequences it does not have: {', '.join(unknown)}")
    train_names = list(config.sequences) or [n for n in names if n not in config.held_aside]
    pipeline = _pipeline_config(config)
    cache = Path(config.cache_dir) if config.cache_dir else None
    folds: dict[str, str] = {}
    if config.fold_saliency:
        if pipeline.geometric.appearance != "saliency":
            raise TrainConfigError("fold_saliency: the recorded pipeline has no saliency prior (geometric.appearance)")
        folds = fold_assignment(tuple(config.fold_saliency), train_names)
    bar = tqdm(total=len(train_names) + len(config.held_aside), desc="refine: recording maps", unit="seq")

    def step(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    train_items = [item for name in train_names for item in recorded(
        root, [name], _with_saliency(pipeline, folds[name]) if name in folds else pipeline, config.scale, cache, step)]
    val_items = recorded(root, list(config.held_aside), pipeline, config.scale, cache, step)[:config.val_images]
    bar.close()
    model = build_refine(RefineArch(width=config.width, scale=config.scale, rgb=config.rgb))
    train = RefineFrames(train_items, config.iterations * config.batch_size, seed=config.seed)

    def save(path: Path, net: nn.Module, meta: dict[str, Any]) -> Path:
        return save_refine(path, net, meta)

    meta = {"data": {"root": str(root), "sequences": train_names, "frames": len(train_items),
                     "held_aside": list(config.held_aside), "held_aside_frames": len(val_items)},
            "recorded_with": {"pipeline": pipeline.to_dict()["geometric"], "fingerprint": fingerprint(pipeline, config.scale),
                              "fold_saliency": folds},
            "init": "random (the correction starts near zero: the fusion's own result)",
            "licence": "trained on DAVIS-2016 (CC BY-NC 4.0): non-commercial use"}
    return StagePlan(stage="refine", model=model, phases=[(0, train)], collate=collate_refine,
                     losses=_losses(config), save=save, export_path=config.export_path(), terms=TERMS,
                     val=val_items or None, score=held_out_iou,
                     plot_keys=("loss", "bce", "soft_iou", "val_iou", "val_iou_fused"), meta=meta)


def train(config: RefineTrainConfig, command: str = "") -> dict[str, Any]:
    return train_stage(config, plan, command)
