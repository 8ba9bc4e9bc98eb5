"""`movseg train mpnet`: seed 003's motion stream MP-Net, from random weights, on angle fields of flow.

Phases (as the paper trains MP-Net: synthetic data first): generated frame pairs with the generator's
exact flow from step 0, then DIS flow of generated frames from `dis_from`, then DIS flow of DAVIS-2016
train frames with their masks from `davis_from` (a phase starting at or past `iterations` is skipped).
The held-aside DAVIS sequences are never trained on; their IoU is the held-out score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from movseg_ros.flow import DIS_PRESETS
from movseg_ros.synth.config import PRESETS, SynthConfig, preset
from movseg_ros.training.loop import LoopConfig, StagePlan, train_stage
from movseg_ros.training.mask_terms import held_out_iou, soft_dice
from movseg_ros.two_stream.arch import MOTION_INPUTS
from movseg_ros.tuning.data import HELD_ASIDE

TERMS = ("bce", "dice")
PHASES = ("truth", "dis", "davis")  # synthetic exact flow, synthetic DIS flow, DAVIS DIS flow
LICENCE = "trained on DAVIS-2016 (CC BY-NC 4.0): non-commercial use"


@dataclass(frozen=True)
class MPNetTrainConfig(LoopConfig):
    """The loop's settings plus the network's width, the three data phases and the loss weights."""

    width: int = 32  # MPNetArch.width
    context: bool = True  # MPNetArch.context
    motion_input: str = "flow"  # MPNetArch.motion_input: flow | residual (the flow minus the camera's homography)
    preset: str = "motion"  # synthetic generator preset
    synth: dict[str, Any] = field(default_factory=lambda: {"texture_source": "skimage"})  # changes to the preset
    size: tuple[int, int] = (320, 240)  # generated frame size (width, height)
    train_seeds: tuple[int, int] = (0, 100000)  # clip seeds [start, stop)
    dis_from: int = 250  # first step on DIS flow of generated frames
    davis_from: int = 500  # first step on DAVIS frames
    davis: str = "../shared/data/davis2016-train"  # DAVIS-layout folder: the last phase and the held-out score ("": none)
    davis_heldout: tuple[str, ...] = HELD_ASIDE  # sequences never trained on: the held-out score
    val_step: int = 5  # every val_step-th held-aside frame is scored
    work_width: int = 320  # DAVIS frames are resized to this width (as the segmenter's work size)
    dis_preset: str = "medium"
    flow_cache: str = "out/cache/davis_flow"  # DAVIS frames' DIS flow, computed once ("": not cached)
    dice_weight: float = 0.5
    optimizer: str = "adamw"
    lr: float = 1e-3
    warmup: int = 50
    batch_size: int = 8
    val_images: int = 200
    out_dir: str = "out/train/mpnet"

    def __post_init__(self) -> None:
        super().__post_init__()
        need = self.need
        need(16 <= self.width <= 128 and self.width % 8 == 0, "width", f"must be a multiple of 8 in [16, 128], got {self.width}")
        need(self.motion_input in MOTION_INPUTS, "motion_input",
             f"'{self.motion_input}' is not one of {', '.join(MOTION_INPUTS)}")
        need(self.preset in PRESETS, "preset", f"'{self.preset}' is not one of {', '.join(PRESETS)}")
        need(isinstance(self.synth, dict), "synth", f"must be a mapping of generator settings, got {self.synth!r}")
        self.synth_config()
        need(min(self.size) >= 32, "size", f"must be at least 32 px a side, got {self.size}")
        lo, hi = self.train_seeds
        need(0 <= lo < hi, "train_seeds", f"must be a range [start, stop) with 0 <= start < stop, got {(lo, hi)}")
        for name in ("dis_from", "davis_from"):
            need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        if self.davis:
            need(Path(self.davis).is_dir(), "davis", f"{self.davis} is not a folder")
        else:
            need(self.davis_from >= self.iterations, "davis_from",
                 f"({self.davis_from}) is below iterations ({self.iterations}) but no davis folder is set")
        need(self.val_step >= 1, "val_step", f"must be >= 1, got {self.val_step}")
        need(self.work_width >= 32, "work_width", f"must be >= 32, got {self.work_width}")
        need(self.dis_preset in DIS_PRESETS, "dis_preset", f"'{self.dis_preset}' is not one of {', '.join(DIS_PRESETS)}")
        need(self.dice_weight >= 0, "dice_weight", f"must be >= 0, got {self.dice_weight}")

    def synth_config(self) -> SynthConfig:
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in self.synth.items()}
        return preset(self.preset).replace(**changes).replace(width=self.size[0], height=self.size[1], frames=2)

    def phases(self) -> list[tuple[int, str]]:
        """(first step, phase) of each phase that runs, in order; the first starts at 0."""
        n = self.iterations
        spans = {"truth": (0, min(self.dis_from, self.davis_from, n)),
                 "dis": (self.dis_from, min(self.davis_from, n)),
                 "davis": (self.davis_from, n)}
        return [(spans[p][0], p) for p in PHASES if spans[p][0] < spans[p][1]]

    def export_path(self) -> Path:
        return Path(self.export) if self.export else Path(self.out_dir) / "mpnet.pt"


CONFIG = MPNetTrainConfig


def _losses(config: MPNetTrainConfig):
    def losses(net: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        logits = net(batch["field"].to(device))
        mask = F.interpolate(batch["mask"].to(device), size=tuple(logits.shape[-2:]), mode="area")
        out = {"bce": F.binary_cross_entropy_with_logits(logits, mask)}
        if config.dice_weight > 0:
            out["dice"] = config.dice_weight * soft_dice(logits, mask)
        return out

    return losses


def _davis(config: MPNetTrainConfig, train: bool) -> Dataset:
    from movseg_ros.visual_memory.motion_data import DavisMotionData

    cache = Path(config.flow_cache) if config.flow_cache else None
    if train:
        return DavisMotionData(config.davis, exclude=tuple(config.davis_heldout), work_width=config.work_width,
                               dis_preset=config.dis_preset, cache_dir=cache, augment=True, seed=config.seed,
                               length=config.iterations * config.batch_size, motion_input=config.motion_input)
    return DavisMotionData(config.davis, sequences=list(config.davis_heldout), work_width=config.work_width,
                           dis_preset=config.dis_preset, cache_dir=cache, augment=False, step=config.val_step,
                           motion_input=config.motion_input)


def plan(config: MPNetTrainConfig) -> StagePlan:
    from movseg_ros.visual_memory.motion_data import SynthMotionData, collate_motion
    from movseg_ros.visual_memory.mpnet import MPNet, MPNetArch, count_parameters, save_mpnet

    synth, seeds = config.synth_config(), range(*config.train_seeds)
    makers = {"truth": lambda: SynthMotionData(synth, seeds, "truth", motion_input=config.motion_input),
              "dis": lambda: SynthMotionData(synth, seeds, "dis", config.dis_preset, config.motion_input),
              "davis": lambda: _davis(config, train=True)}
    phases = config.phases()
    val = _davis(config, train=False) if config.davis and config.davis_heldout else None
    model = MPNet(MPNetArch(width=config.width, context=config.context, motion_input=config.motion_input))

    def save(path: Path, net: nn.Module, meta: dict[str, Any]) -> Path:
        return save_mpnet(path, net, meta)

    bounds = [first for first, _ in phases[1:]] + [config.iterations]
    uses_davis = any(name == "davis" for _, name in phases)
    meta: dict[str, Any] = {
        "init": "random", "parameters": count_parameters(model),
        "input": ("angle field of the flow at frame t" + (" minus the camera's RANSAC homography" if config.motion_input
                                                          == "residual" else "")
                  + ": cos, sin (0 below 0.1 px), |f| / max(p99 |f|, 1 px)"),
        "phases": [{"phase": name, "from": first, "to": end} for (first, name), end in zip(phases, bounds)],
        "data": {"generator": "movseg_ros.synth", "preset": config.preset, "synth": dict(config.synth),
                 "size": list(config.size), "train_seeds": list(config.train_seeds),
                 "estimated_flow": f"dis {config.dis_preset}, scale 1",
                 **({"davis": config.davis, "work_width": config.work_width,
                     "heldout_sequences": list(config.davis_heldout), "val_step": config.val_step,
                     "davis_flow": "minus DIS flow from t back to t-1 (DavisDetectionData.flow)",
                     "augment": "flip, scale 0.8-1.25 and crop (augment_frame)"} if config.davis else {})},
    }
    if uses_davis:
        meta["licence"] = LICENCE
    return StagePlan(stage="mpnet", model=model, phases=[(first, makers[name]()) for first, name in phases],
                     collate=collate_motion, losses=_losses(config), save=save, export_path=config.export_path(),
                     terms=TERMS, val=val, score=held_out_iou("field"), plot_keys=("loss", "bce", "dice", "val_iou"), meta=meta)


def train(config: MPNetTrainConfig, command: str = "") -> dict[str, Any]:
    return train_stage(config, plan, command)
