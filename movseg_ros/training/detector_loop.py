"""What the Mask R-CNN stages (movseg train motion | appearance | joint) add to the shared loop:
their settings (architecture and its initialisation, synthetic and DAVIS data, held-out splits) and a plan
built from a model of a kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from movseg_ros.synth.config import PRESETS, SynthConfig, preset
from movseg_ros.training.common import TrainConfigError, check_seed_ranges
from movseg_ros.training.loop import LoopConfig, StagePlan, train_stage
from movseg_ros.tuning.data import HELD_ASIDE
from movseg_ros.two_stream.arch import ArchError, DetectorArch
from movseg_ros.two_stream.backbones import INITS, check_imagenet_arch, init_backbone
from movseg_ros.two_stream.data import collate
from movseg_ros.two_stream.evaluate import detection_map
from movseg_ros.two_stream.weights import save_model

LOSS_TERMS = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask")


@dataclass(frozen=True)
class DetectorTrainConfig(LoopConfig):
    """The loop's settings plus the detector's architecture and its synthetic data."""

    arch: dict[str, Any] = field(default_factory=dict)  # DetectorArch settings changed from the light default
    min_size: int = 240  # images are resized so their short side is this (torchvision's transform)
    preset: str = "motion"  # synthetic generator preset
    synth: dict[str, Any] = field(default_factory=dict)  # generator settings changed from the preset
    size: tuple[int, int] = (320, 240)  # generated frame size (width, height)
    train_seeds: tuple[int, int] = (0, 100000)  # clip seeds [start, stop) drawn for training
    heldout_seeds: tuple[int, int] = (100000, 100200)  # never trained on; the report's held-out split
    init: str = "none"  # backbone start: none (random) | imagenet (the installed MobileNetV2; arch mobilenet_v2)
    roi_batch: int = 512  # RoIs sampled per image for the box head in training (torchvision's 512; 128 is 2x faster)
    davis: str = ""  # DAVIS-layout training folder (e.g. ../shared/data/davis2016-train); empty: synthetic only
    davis_from: int = 0  # first step on DAVIS items; the stage's synthetic phases run before it
    davis_heldout: tuple[str, ...] = HELD_ASIDE  # sequences never trained on: the held-out scores and thresholds
    flow_cache: str = "out/cache/davis_flow"  # DIS flow of the DAVIS frames, computed once
    out_dir: str = "out/train/detector"

    def __post_init__(self) -> None:
        super().__post_init__()
        need = self.need
        try:
            self.detector_arch()
        except (ArchError, TypeError) as e:
            raise TrainConfigError(f"training setting arch: {e}") from None
        need(64 <= self.min_size <= 1600, "min_size", f"must be in [64, 1600], got {self.min_size}")
        need(self.preset in PRESETS, "preset", f"'{self.preset}' is not one of {', '.join(PRESETS)}")
        need(isinstance(self.synth, dict), "synth", f"must be a mapping of generator settings, got {self.synth!r}")
        self.synth_config()
        need(min(self.size) >= 32, "size", f"must be at least 32 px a side, got {self.size}")
        check_seed_ranges(self, "val_images")
        need(self.init in INITS, "init", f"'{self.init}' is not one of {', '.join(INITS)}")
        if self.init == "imagenet":
            try:
                check_imagenet_arch(self.detector_arch())
            except ArchError as e:
                raise TrainConfigError(f"training setting init: {e}") from None
        need(self.roi_batch >= 16, "roi_batch", f"must be >= 16, got {self.roi_batch}")
        need(self.davis_from >= 0, "davis_from", f"must be >= 0, got {self.davis_from}")
        if self.davis:
            need(Path(self.davis).is_dir(), "davis", f"{self.davis} is not a folder")
            need(self.davis_from < self.iterations, "davis_from",
                 f"({self.davis_from}) must be below iterations ({self.iterations}) when davis is set")

    def detector_arch(self) -> DetectorArch:
        return DetectorArch.from_dict(dict(self.arch))

    def synth_config(self) -> SynthConfig:
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in self.synth.items()}
        return preset(self.preset).replace(**changes).replace(width=self.size[0], height=self.size[1], frames=2)

    def davis_data(self, kind: str, train: bool = True) -> Dataset:
        """DAVIS items of `kind`: the training sequences augmented, or the held-aside ones as they are (evenly
        spaced `val_images` of them); their flow cached in `flow_cache`."""
        from movseg_ros.two_stream.davis_data import DavisDetectionData

        if train:
            data = DavisDetectionData(self.davis, kind, exclude=tuple(self.davis_heldout), augment=True,
                                      seed=self.seed, cache_dir=Path(self.flow_cache),
                                      motion_input=self.detector_arch().motion_input)
        else:
            data = DavisDetectionData(self.davis, kind, sequences=list(self.davis_heldout), augment=False,
                                      cache_dir=Path(self.flow_cache), motion_input=self.detector_arch().motion_input)
        if kind != "appearance":
            data.precompute()
        if train or self.val_images == 0:
            return data
        step = max(1, len(data) // self.val_images)
        return Subset(data, list(range(0, len(data), step))[:self.val_images])

    def init_model(self, model: nn.Module) -> dict[str, str]:
        """Apply `init` to every backbone the model has, and set the training RoI batch; what was loaded, for the meta."""
        backbones = {name: getattr(model, name) for name in ("backbone", "appearance_backbone", "motion_backbone")
                     if hasattr(model, name)}
        loaded = {name: init_backbone(b, self.detector_arch(), self.init) for name, b in backbones.items()}
        for heads in (getattr(model, "roi_heads", None), getattr(model, "static_roi_heads", None)):
            if heads is not None:
                heads.fg_bg_sampler.batch_size_per_image = self.roi_batch
        return loaded

    def davis_record(self) -> dict[str, Any]:
        return ({"davis": self.davis, "davis_from": self.davis_from, "heldout_sequences": list(self.davis_heldout),
                 "instances": "mask components, those closer than 2% of the diagonal grouped",
                 "augment": "flip, scale 0.8-1.25 and crop, colour jitter"} if self.davis else {})

    def export_path(self, stage: str) -> Path:
        return Path(self.export) if self.export else Path(self.out_dir) / f"{stage}_{self.detector_arch().backbone}.pt"


def _detector_losses(net: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    inputs = [x.to(device) for x in batch["inputs"]]
    targets = [{k: v.to(device) for k, v in t.items() if k != "moving"} for t in batch["targets"]]
    return net(inputs, targets)


def _detector_scores(model: nn.Module, items: list[dict[str, Any]], device: torch.device) -> dict[str, Any]:
    scores = detection_map(model, items, device)
    return {"val_det_map50": scores["det_map50"], "val_seg_map50": scores["seg_map50"]}


def detector_plan(config: DetectorTrainConfig, stage: str, kind: str, model: nn.Module,
                  phases: list[tuple[int, Dataset]], val: Dataset | None, frozen: list[nn.Module] | None = None,
                  meta: dict[str, Any] | None = None) -> StagePlan:
    """A Mask R-CNN stage's plan: torchvision's losses, mAP@0.5 on held-out items, weights via save_model."""
    arch = config.detector_arch()

    def save(path: Path, trained: nn.Module, record: dict[str, Any]) -> Path:
        return save_model(path, kind, trained, arch, record)

    data = {"generator": "movseg_ros.synth", "preset": config.preset, "synth": dict(config.synth),
            "size": list(config.size), "train_seeds": list(config.train_seeds),
            "heldout_seeds": list(config.heldout_seeds), **config.davis_record()}
    return StagePlan(stage=stage, model=model, phases=phases, collate=collate, losses=_detector_losses, save=save,
                     export_path=config.export_path(stage), terms=LOSS_TERMS, val=val, score=_detector_scores,
                     plot_keys=("loss", "loss_classifier", "loss_mask", "val_seg_map50"), frozen=frozen or [],
                     meta={"min_size": config.min_size, "data": data, **(meta or {})})


def train_detector(config: DetectorTrainConfig, make_plan: Callable[[Any], StagePlan], command: str) -> dict[str, Any]:
    return train_stage(config, make_plan, command)
