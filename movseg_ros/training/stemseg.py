"""`movseg train stemseg`: seed 004's network on clips from three sources sampled together on the fly.

Sources (seed 004 §4.1): synthetic clips from the generator (objects that move are the instances),
clips animated from single images (COCO-format instance data, or the generator's single frames,
under independent random affine jitter and motion blur), and DAVIS-layout video. One loss: the
Lovász hinge of each instance's tube under its Gaussian, variance smoothness (x10, as the authors'
code weights it) and the seediness L2, at the network's output resolution (stride 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from movseg_ros.synth.config import PRESETS, SynthConfig, preset
from movseg_ros.training.common import TrainConfigError, check_seed_ranges
from movseg_ros.training.loop import LoopConfig, StagePlan, train_stage
from movseg_ros.two_stream.arch import ArchError
from movseg_ros.two_stream.backbones import INITS, check_imagenet_arch, init_backbone

TERMS = ("embedding", "smoothness", "seediness")


@dataclass(frozen=True)
class StemSegTrainConfig(LoopConfig):
    """The loop's settings plus the network, the clip size and the mix of sources."""

    arch: dict[str, Any] = field(default_factory=dict)  # StemSegArch settings changed from the light default
    init: str = "none"  # backbone start: none (random) | imagenet (installed MobileNetV2; arch backbone mobilenet_v2)
    clip_length: int = 8  # T, frames per training clip
    size: tuple[int, int] = (256, 144)  # clip frame size (width, height)
    preset: str = "stemseg"  # synthetic generator preset (synthetic clips and single frames)
    synth: dict[str, Any] = field(default_factory=dict)  # generator settings changed from the preset
    synth_weight: float = 0.6  # share of synthetic clips
    animated_weight: float = 0.4  # share of clips animated from single images
    video_weight: float = 0.0  # share of DAVIS-layout video clips (needs video_root)
    video_root: str = ""  # a DAVIS-layout data set (JPEGImages/, Annotations/)
    video_held_aside: tuple[str, ...] = ()  # its sequences never trained on (scored with `movseg eval --sequences`)
    frozen_blocks: int = 0  # first backbone blocks kept frozen (no gradients): keeps ImageNet features general
    coco_annotations: str = ""  # animate COCO-format images instead of the generator's single frames
    coco_images: str = ""
    embedding_weight: float = 1.0
    smoothness_weight: float = 10.0
    seediness_weight: float = 1.0
    train_seeds: tuple[int, int] = (0, 100000)
    heldout_seeds: tuple[int, int] = (100000, 100100)  # held-out synthetic clips (val and the report)
    optimizer: str = "adamw"
    lr: float = 5e-4
    warmup: int = 50
    val_images: int = 4  # held-out clips clustered and scored at every checkpoint
    out_dir: str = "out/train/stemseg"

    def __post_init__(self) -> None:
        super().__post_init__()
        need = self.need
        try:
            self.stemseg_arch()
        except (ValueError, TypeError) as e:
            raise TrainConfigError(f"training setting arch: {e}") from None
        need(self.init in INITS, "init", f"'{self.init}' is not one of {', '.join(INITS)}")
        if self.init == "imagenet":
            try:
                check_imagenet_arch(self.stemseg_arch().detector_arch())
            except ArchError as e:
                raise TrainConfigError(f"training setting init: {e}") from None
        need(2 <= self.clip_length <= 32, "clip_length", f"must be in [2, 32], got {self.clip_length}")
        need(min(self.size) >= 32, "size", f"must be at least 32 px a side, got {self.size}")
        need(self.preset in PRESETS, "preset", f"'{self.preset}' is not one of {', '.join(PRESETS)}")
        need(isinstance(self.synth, dict), "synth", f"must be a mapping of generator settings, got {self.synth!r}")
        self.synth_config()
        for name in ("synth_weight", "animated_weight", "video_weight", "embedding_weight", "smoothness_weight",
                     "seediness_weight"):
            need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        need(self.synth_weight + self.animated_weight + self.video_weight > 0, "synth_weight/animated_weight/video_weight",
             "are all 0: no source to sample")
        need(self.video_weight == 0 or bool(self.video_root), "video_root", "is needed when video_weight > 0")
        need(self.frozen_blocks >= 0, "frozen_blocks", f"must be >= 0, got {self.frozen_blocks}")
        need(self.frozen_blocks == 0 or self.init != "none", "frozen_blocks",
             "freezes random weights without init imagenet")
        need(bool(self.coco_annotations) == bool(self.coco_images), "coco_annotations/coco_images",
             "go together (both or neither)")
        check_seed_ranges(self, "val_images")

    def stemseg_arch(self):
        from movseg_ros.stem_seg.network import StemSegArch

        return StemSegArch.from_dict(dict(self.arch))

    def synth_config(self) -> SynthConfig:
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in self.synth.items()}
        return preset(self.preset).replace(**changes).replace(width=self.size[0], height=self.size[1],
                                                               frames=self.clip_length)

    def export_path(self) -> Path:
        return Path(self.export) if self.export else Path(self.out_dir) / "stemseg.pt"


CONFIG = StemSegTrainConfig


def training_mix(config: StemSegTrainConfig) -> Dataset:
    """The sources sampled together: item i of the mix is a pure function of (seed, i)."""
    from movseg_ros.stem_seg.data import AnimatedImageClips, CocoImages, MixedClips, SynthClips, SynthImages, VideoClips

    synth = config.synth_config()
    lo, hi = config.train_seeds
    n = hi - lo
    sources: list[tuple[Dataset, float]] = []
    if config.synth_weight > 0:
        sources.append((SynthClips(synth, n, base_seed=lo), config.synth_weight))
    if config.animated_weight > 0:
        images = (CocoImages.open(config.coco_annotations, config.coco_images) if config.coco_annotations
                  else SynthImages(synth, n, base_seed=lo))
        sources.append((AnimatedImageClips(images, config.clip_length, config.size, n, base_seed=lo), config.animated_weight))
    if config.video_weight > 0:
        sources.append((VideoClips(Path(config.video_root), config.clip_length, config.size, n, base_seed=lo,
                                   sequences=video_sequences(config)), config.video_weight))
    return MixedClips(sources, n, base_seed=config.seed)


def video_sequences(config: StemSegTrainConfig) -> list[str] | None:
    """The video set's sequences trained on: all but `video_held_aside` (None = all); unknown names are an error."""
    if not config.video_held_aside:
        return None
    from movseg_ros.datasets.errors import DatasetError
    from movseg_ros.datasets.registry import open_dataset

    root = Path(config.video_root)
    if not root.is_dir():
        raise DatasetError(root, "no such data folder (video_root)")
    names = sorted(s.name for s in open_dataset(root))
    unknown = sorted(set(config.video_held_aside) - set(names))
    if unknown:
        raise DatasetError(root, f"video_held_aside names sequences it does not have: {', '.join(unknown)}")
    return [n for n in names if n not in config.video_held_aside]


def frozen_backbone_blocks(model: nn.Module, count: int) -> list[nn.Module]:
    """The first `count` blocks of the backbone's body (kept in eval mode, no gradients)."""
    body = model.backbone.body
    blocks = list(body.children())
    if count > len(blocks):
        raise TrainConfigError(f"training setting frozen_blocks must be at most {len(blocks)} (the backbone's blocks), "
                               f"got {count}")
    return blocks[:count]


def heldout_clips(config: StemSegTrainConfig) -> Dataset:
    """Synthetic clips from the held-out seeds (never trained on)."""
    from movseg_ros.stem_seg.data import SynthClips

    lo, hi = config.heldout_seeds
    return SynthClips(config.synth_config(), hi - lo, base_seed=lo)


def output_size_targets(instances: torch.Tensor, ignore: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, H, W) ids and ignore brought to the network's output grid (nearest neighbour)."""
    ids = F.interpolate(instances[None].float(), size=size, mode="nearest")[0].long()
    ign = F.interpolate(ignore[None].float(), size=size, mode="nearest")[0] > 0.5
    return ids, ign


def network_input(images: torch.Tensor, motion: Any) -> torch.Tensor:
    """(B, T, 3, H, W) clips as the network takes them: with their residual motion appended when it reads it."""
    return images if motion is None else motion.extend(images)


def _losses(config: StemSegTrainConfig):
    from movseg_ros.stem_seg.losses import clip_losses

    from movseg_ros.stem_seg.motion import motion_for

    motion = motion_for(config.stemseg_arch())

    def losses(net: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        out = net(network_input(batch["images"].to(device), motion))
        size = tuple(out["seediness"].shape[-2:])
        per_item = []
        for b in range(out["seediness"].shape[0]):
            ids, ign = output_size_targets(batch["instances"][b].to(device), batch["ignore"][b].to(device), size)
            per_item.append(clip_losses(out["embeddings"][b], out["variances"][b], out["seediness"][b], ids, ign))
        return {k: getattr(config, f"{k}_weight") * torch.stack([p[k] for p in per_item]).mean() for k in TERMS}

    return losses


@torch.no_grad()
def tube_iou(model: nn.Module, items: list[dict[str, Any]], device: torch.device) -> dict[str, Any]:
    """Mean over true instances of the best-matching clustered tube's IoU (0 when none matches): the
    held-out score of a checkpoint."""
    from scipy.optimize import linear_sum_assignment

    from movseg_ros.stem_seg.clustering import ClusterConfig, cluster

    was = model.training
    model.eval()
    from movseg_ros.stem_seg.motion import motion_for

    motion = motion_for(getattr(model, "module", model).arch)
    ious, found = [], 0
    for item in items:
        out = model(network_input(item["images"][None].to(device), motion))
        size = tuple(out["seediness"].shape[-2:])
        truth, ign = output_size_targets(item["instances"].to(device), item["ignore"].to(device), size)
        pred = cluster(out["embeddings"][0], out["variances"][0], out["seediness"][0], ClusterConfig()).ids
        truth, pred, keep = truth.cpu().numpy(), pred.cpu().numpy(), ~ign.cpu().numpy()
        t_ids = [i for i in np.unique(truth[keep]) if i > 0]
        p_ids = [i for i in np.unique(pred[keep]) if i > 0]
        found += len(p_ids)
        if not t_ids:
            continue
        iou = np.zeros((len(t_ids), max(1, len(p_ids))))
        for a, t in enumerate(t_ids):
            tm = (truth == t) & keep
            for b, p in enumerate(p_ids):
                pm = (pred == p) & keep
                union = np.count_nonzero(tm | pm)
                iou[a, b] = np.count_nonzero(tm & pm) / union if union else 0.0
        rows, cols = linear_sum_assignment(-iou)
        best = np.zeros(len(t_ids))
        best[rows] = iou[rows, cols]
        ious += best.tolist()
    model.train(was)
    return {"val_tube_iou": float(np.mean(ious)) if ious else None, "val_tubes_found": found / max(1, len(items))}


def plan(config: StemSegTrainConfig) -> StagePlan:
    from movseg_ros.stem_seg.data import collate_clips
    from movseg_ros.stem_seg.network import build_stemseg, save_stemseg

    arch = config.stemseg_arch()

    def save(path: Path, model: nn.Module, meta: dict[str, Any]) -> Path:
        return save_stemseg(path, model, arch, meta)

    mix = training_mix(config)
    data = {"generator": "movseg_ros.synth", "preset": config.preset, "synth": dict(config.synth),
            "size": list(config.size), "clip_length": config.clip_length, "train_seeds": list(config.train_seeds),
            "heldout_seeds": list(config.heldout_seeds),
            "weights": {"synth": config.synth_weight, "animated": config.animated_weight, "video": config.video_weight},
            "animated_from": config.coco_annotations or "generator frames", "video_root": config.video_root or None,
            "video_held_aside": list(config.video_held_aside), "frozen_blocks": config.frozen_blocks}
    model = build_stemseg(arch)
    init = init_backbone(model.backbone, arch.detector_arch(), config.init)
    return StagePlan(stage="stemseg", model=model, phases=[(0, mix)], collate=collate_clips,
                     losses=_losses(config), save=save, export_path=config.export_path(), terms=TERMS,
                     val=heldout_clips(config), score=tube_iou, frozen=frozen_backbone_blocks(model, config.frozen_blocks),
                     plot_keys=("loss", "embedding", "seediness", "val_tube_iou"), meta={"data": data, "init": init})


def train(config: StemSegTrainConfig, command: str = "") -> dict[str, Any]:
    return train_stage(config, plan, command)
