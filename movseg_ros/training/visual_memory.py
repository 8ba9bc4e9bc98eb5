"""`movseg train visual_memory`: seed 003's ConvGRU memory on DAVIS-2016 train, by BPTT on runs of frames.

The appearance encoder (ImageNet MobileNetV2) stays frozen and MP-Net (`movseg train mpnet`) is fixed, so
every frame's inputs are cached once; the appearance reduction, the GRU and both heads train on runs
with stop-and-go augmentation. The held-aside sequences are never trained on: their online and offline
J over whole sequences is the held-out score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from movseg_ros.training.loop import LoopConfig, StagePlan, train_stage
from movseg_ros.model_files import file_sha256
from movseg_ros.tuning.data import HELD_ASIDE

FREEZABLE = ("reduce", "gru", "online_head", "offline_head", "fine")  # the memory's trainable modules
TERMS = ("online_bce", "fine_bce", "offline_bce", "online_iou", "fine_iou", "offline_iou")


@dataclass(frozen=True)
class MemoryTrainConfig(LoopConfig):
    """The loop's settings plus data, inputs, sizes and the stop-and-go augmentation."""

    data_root: str = "../shared/data/davis2016-train"
    extra_roots: tuple[str, ...] = ()  # further DAVIS-layout sets trained on whole, e.g. synthetic streams with several
    #   movers (movseg synth write --annotations moved); sequence names must differ from data_root's
    held_aside: tuple[str, ...] = HELD_ASIDE  # sequences never trained on: the held-out score
    mpnet: str = "models/mpnet.pt"  # the fixed motion stream whose maps the memory reads
    flow_cache: str = "out/cache/davis_flow"  # DIS flow of the frames (shared with the two-stream stages)
    cache_dir: str = "out/cache/visual_memory"  # recorded inputs, per sequence, under a fingerprint
    work_width: int = 320
    scale_widths: tuple[int, ...] = ()  # further widths the training sequences are recorded at: scale augmentation
    #   for a memory whose encoder is frozen (each width's frames are runs of their own; held-aside at work_width)
    dis_preset: str = "medium"
    appearance: int = 128
    state: int = 64
    kernel: int = 3
    residual: bool = False  # the flow's camera-compensated residual as a second motion input (MemoryArch.residual)
    dropout: float = 0.0  # share of appearance channels dropped in training (MemoryArch.dropout)
    fine: int = 0  # channels of the stride-4 decoder on the online head (MemoryArch.fine; 0: none)
    saliency: bool = False  # the saliency network's map as a last input (MemoryArch.saliency)
    deep: bool = False  # the encoder's stride-32 features too (MemoryArch.deep; crops then start on stride-32 cells)
    freeze: tuple[str, ...] = ()  # memory modules kept fixed, e.g. a fine decoder trained on a finished memory
    #   (start_from it): [reduce, gru, online_head, offline_head]
    saliency_weights: str = "models/saliency_mobilenet_v2.pt"  # the saliency network the memory runs with; it
    #   gives the held-aside sequences' maps, so it must never have trained on them
    fold_saliency: tuple[str, ...] = ()  # saliency files for the training sequences' maps, each sequence's from a
    #   file that never trained on it (training/saliency_folds.py); needed with `saliency`
    run_length: int = 8  # frames a run (BPTT length)
    crop: tuple[int, int] = (12, 16)  # training window in stride-8 cells (height, width), aligned; (0, 0): whole frames
    stop: float = 0.2  # share of runs where the object stops part-way
    static_start: float = 0.2  # share of runs where the object is static at the start
    mirror: float = 0.5
    offline_weight: float = 1.0  # the bidirectional head's loss weight (0: online only)
    iou_weight: float = 0.0  # weight of a soft-IoU (Jaccard) loss beside each head's BCE (0: BCE alone)
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    batch_size: int = 4
    val_images: int = 6  # held-aside sequences scored whole
    out_dir: str = "out/train/visual_memory"

    def __post_init__(self) -> None:
        super().__post_init__()
        from movseg_ros.visual_memory.data import RunAugment

        need = self.need
        need(64 <= self.work_width <= 1920, "work_width", f"must be in [64, 1920], got {self.work_width}")
        need(all(64 <= w <= 1920 and w != self.work_width for w in self.scale_widths)
             and len(set(self.scale_widths)) == len(self.scale_widths), "scale_widths",
             f"must be distinct widths in [64, 1920] other than work_width, got {list(self.scale_widths)}")
        need(2 <= self.run_length <= 64, "run_length", f"must be in [2, 64], got {self.run_length}")
        need(len(self.crop) == 2 and (all(c == 0 for c in self.crop) or all(2 <= c <= 256 and c % 2 == 0 for c in self.crop)), "crop",
             f"must be (0, 0) or two even sizes in [2, 256] stride-8 cells, got {self.crop}")
        need(self.offline_weight >= 0, "offline_weight", f"must be >= 0, got {self.offline_weight}")
        need(self.iou_weight >= 0, "iou_weight", f"must be >= 0, got {self.iou_weight}")
        need(all(m in FREEZABLE for m in self.freeze), "freeze",
             f"must name modules among {', '.join(FREEZABLE)}, got {list(self.freeze)}")
        need("fine" not in self.freeze or self.fine > 0, "freeze", "names fine, but the memory has no fine decoder")
        try:
            self.arch()
            RunAugment(self.stop, self.static_start, self.mirror)
        except ValueError as e:
            need(False, "arch/augmentation", str(e))

    def arch(self):
        """The memory's architecture record."""
        from movseg_ros.visual_memory.network import MemoryArch

        return MemoryArch(self.appearance, self.state, self.kernel, self.residual, self.dropout, self.fine, self.saliency,
                          self.deep)

    def export_path(self) -> Path:
        return Path(self.export) if self.export else Path(self.out_dir) / "visual_memory.pt"


CONFIG = MemoryTrainConfig


def _logits_at(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, T, 1, h, w) logits resized to `size`."""
    b, t = logits.shape[:2]
    return F.interpolate(logits.flatten(0, 1), size=size, mode="bilinear", align_corners=False).unflatten(0, (b, t))


def run_inputs(net: nn.Module, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    """The GRU inputs (B, T, C, h, w) of a batch of runs."""
    s8, s16, motion = (batch[k].to(device) for k in ("s8", "s16", "motion"))
    s32 = batch["s32"].to(device).flatten(0, 1) if "s32" in batch else None
    b, t = s8.shape[:2]
    xs = net.inputs(s8.flatten(0, 1), s16.flatten(0, 1), motion.flatten(0, 1), s32)
    return xs.unflatten(0, (b, t))


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Jaccard index of each frame's map (B, T, 1, h, w), averaged; `eps` (in pixels) keeps frames
    without an object defined: a map that stays empty there costs nothing."""
    p = torch.sigmoid(logits).flatten(2)
    t = target.flatten(2)
    inter = (p * t).sum(-1)
    union = (p + t - p * t).sum(-1)
    return (1 - (inter + eps) / (union + eps)).mean()


def _losses(config: MemoryTrainConfig):
    def losses(net: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        inner = net.module if hasattr(net, "module") else net
        fw, bw = inner.states(run_inputs(inner, batch, device), backward=config.offline_weight > 0)
        online = inner.refined(fw, None, None)  # the stride-8 head, trained on its own too
        offline = None if bw is None else inner.offline(fw, bw)
        fine = None
        if inner.fine is not None:
            fine = inner.refined(fw, batch["s4"].to(device), batch["motion"].to(device))
        size = (online.shape[-2] * 2, online.shape[-1] * 2)  # stride 4: the targets' area average
        out = {}
        for name, logits, key, weight in (("online_bce", online, "online_target", 1.0),
                                          ("fine_bce", fine, "online_target", 1.0),
                                          ("offline_bce", offline, "offline_target", config.offline_weight)):
            if logits is None:
                continue
            target = batch[key].to(device)
            target = F.interpolate(target.flatten(0, 1), size=size, mode="area").unflatten(0, target.shape[:2])
            at = _logits_at(logits, size)
            out[name] = weight * F.binary_cross_entropy_with_logits(at, target)
            if config.iou_weight > 0:
                out[name.replace("bce", "iou")] = weight * config.iou_weight * soft_iou_loss(at, target)
        return out

    return losses


def _j(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(pred | truth)
    return 1.0 if union == 0 else np.count_nonzero(pred & truth) / union


@torch.no_grad()
def held_out_j(model: nn.Module, items: list[dict[str, Any]], device: torch.device) -> dict[str, Any]:
    """Mean J over whole held-aside sequences, online and offline (p > 0.5 at the work size)."""
    was = model.training
    model.eval()
    scores: dict[str, list[float]] = {"val_j_online": [], "val_j_offline": []}
    for item in items:
        online, offline = model.run(run_inputs(model, item, device), offline=True, s4=item["s4"].to(device),
                                    motion=item["motion"].to(device))
        size = item["masks"].shape[-2:]
        for key, logits in (("val_j_online", online), ("val_j_offline", offline)):
            pred = (_logits_at(logits, size)[0, :, 0] > 0).cpu().numpy()
            scores[key].append(float(np.mean([_j(p, m) for p, m in zip(pred, item["masks"])])))
    model.train(was)
    return {k: float(np.mean(v)) if v else None for k, v in scores.items()}


def recorded_sequences(config: MemoryTrainConfig, names: list[str], encoder: nn.Module, progress: bool = True,
                       root: Path | None = None):
    """Each sequence's cached inputs, recorded first (through the frozen `encoder` and MP-Net) where the caches
    lack them. Appearance and motion are cached apart: a new MP-Net re-records only the motion maps. The
    sequences are under `root` (default data_root)."""
    from movseg_ros.two_stream.davis_data import DavisDetectionData
    from movseg_ros.visual_memory.data import (appearance_fingerprint, load_inputs, motion_fingerprint,
                                               record_appearance, record_motion, record_residual,
                                               residual_fingerprint, save_arrays)
    from movseg_ros.visual_memory.mpnet import MotionPredictor
    from movseg_ros.visual_memory.predictor import AppearanceFeatures

    root, cache = Path(root or config.data_root), Path(config.cache_dir)
    app_dir = cache / "appearance" / appearance_fingerprint(config.work_width, config.deep)
    motion_dir = cache / "motion" / motion_fingerprint(Path(config.mpnet), config.work_width, config.dis_preset)
    todo = [n for n in names if not (app_dir / f"{n}.npz").is_file()]
    if todo:
        features = AppearanceFeatures(encoder)
        for name in tqdm(todo, desc="record appearance", disable=not progress):
            save_arrays(app_dir / f"{name}.npz", record_appearance(root, name, features, config.work_width))

    def flows(name: str):
        data = DavisDetectionData(root, "motion", sequences=[name], work_width=config.work_width,
                                  dis_preset=config.dis_preset, augment=False, cache_dir=config.flow_cache)
        return lambda k, rgb: data.flow(k - 1, rgb)

    todo = [n for n in names if not (motion_dir / f"{n}.npz").is_file()]
    if todo:
        motion = MotionPredictor(config.mpnet)
        for name in tqdm(todo, desc="record MP-Net maps", disable=not progress):
            save_arrays(motion_dir / f"{name}.npz", record_motion(root, name, motion, flows(name), config.work_width))
    residual_dir = None
    if config.residual:
        residual_dir = cache / "residual" / residual_fingerprint(config.work_width, config.dis_preset)
        for name in tqdm([n for n in names if not (residual_dir / f"{n}.npz").is_file()], desc="record residual maps",
                         disable=not progress):
            save_arrays(residual_dir / f"{name}.npz", record_residual(root, name, flows(name), config.work_width))
    saliency = saliency_caches(config, names, app_dir, progress) if config.saliency else {}
    return [load_inputs(app_dir / f"{n}.npz", motion_dir / f"{n}.npz", n,
                        residual_dir / f"{n}.npz" if residual_dir else None, saliency.get(n), config.deep) for n in names]


def saliency_caches(config: MemoryTrainConfig, names: list[str], app_dir: Path, progress: bool = True) -> dict[str, Path]:
    """Each sequence's saliency-map cache, recorded from its appearance cache where missing: held-aside sequences
    through `saliency_weights` (the network the memory will run with), training ones out of fold."""
    from movseg_ros.saliency.network import load_saliency
    from movseg_ros.training.common import TrainConfigError
    from movseg_ros.training.saliency_folds import fold_assignment
    from movseg_ros.visual_memory.data import record_saliency, saliency_fingerprint, save_arrays

    if not config.fold_saliency:
        raise TrainConfigError("fold_saliency: saliency needs out-of-fold files for the training sequences")
    held = [n for n in names if n in config.held_aside]
    chosen = {**fold_assignment(tuple(config.fold_saliency), [n for n in names if n not in config.held_aside]),
              **fold_assignment((config.saliency_weights,), held, "saliency_weights")}
    paths = {n: Path(config.cache_dir) / "saliency" / saliency_fingerprint(Path(f), config.work_width) / f"{n}.npz"
             for n, f in chosen.items()}
    for f in sorted(set(chosen.values())):
        todo = [n for n in names if chosen[n] == f and not paths[n].is_file()]
        if not todo:
            continue
        net, _ = load_saliency(f)
        for name in tqdm(todo, desc=f"record saliency ({Path(f).parent.name})", disable=not progress):
            save_arrays(paths[name], record_saliency(app_dir / f"{name}.npz", net.decode))
    return paths


def _extra_sequences(config: MemoryTrainConfig, taken: set[str]) -> dict[Path, list[str]]:
    """Each extra root's sequences; a name that data_root or another root also has is refused (the caches are
    per name)."""
    from movseg_ros.saliency.data import davis_frames
    from movseg_ros.training.common import TrainConfigError

    out = {}
    for root in map(Path, config.extra_roots):
        names = sorted({i.sequence for i in davis_frames(root)})
        clash = sorted(taken.intersection(names))
        if clash:
            raise TrainConfigError(f"extra_roots: {root} has sequence(s) {clash[:3]} that another root also has")
        taken.update(names)
        out[root] = names
    return out


def plan(config: MemoryTrainConfig) -> StagePlan:
    from movseg_ros.pretrained import IMAGENET_MOBILENET_V2 as src
    from movseg_ros.saliency.data import davis_frames
    from movseg_ros.visual_memory.data import MemoryRuns, RunAugment, collate_runs, whole_sequence
    from movseg_ros.visual_memory.network import build_memory, save_memory

    root = Path(config.data_root)
    names = sorted({i.sequence for i in davis_frames(root, exclude=config.held_aside)})
    held = sorted(config.held_aside)
    model = build_memory(config.arch(), init="imagenet")
    sequences = recorded_sequences(config, names + held, model.encoder)  # after the model: the same initial weights
    train_seqs, val_seqs = sequences[:len(names)], sequences[len(names):]
    extra = _extra_sequences(config, set(names + held))
    for extra_root, extra_names in extra.items():
        train_seqs += recorded_sequences(config, extra_names, model.encoder, root=extra_root)
    for width in config.scale_widths:
        train_seqs += recorded_sequences(replace(config, work_width=width, scale_widths=()), names, model.encoder)
    runs = MemoryRuns(train_seqs, config.run_length, config.iterations * config.batch_size, seed=config.seed,
                      augment=RunAugment(config.stop, config.static_start, config.mirror), crop=tuple(config.crop))
    val = [whole_sequence(s) for s in val_seqs]

    def save(path: Path, net: nn.Module, meta: dict[str, Any]) -> Path:
        return save_memory(path, net, meta)

    meta = {"data": {"root": str(root), "sequences": names, "frames": sum(len(s) for s in sequences[:len(names)]),
                     "held_aside": held,
                     "extra": {str(r): {"sequences": len(n), "frames": sum(len(s) for s in train_seqs if s.name in set(n))}
                               for r, n in extra.items()},
                     "work_width": config.work_width, "scale_widths": list(config.scale_widths),
                     "dis_preset": config.dis_preset},
            "mpnet": str(config.mpnet), "mpnet_sha256": file_sha256(Path(config.mpnet)),
            "residual": config.residual, "fine": config.fine, "saliency": config.saliency, "deep": config.deep,
            **({"saliency_sha256": file_sha256(Path(config.saliency_weights)),
                "fold_saliency": list(config.fold_saliency)} if config.saliency else {}),
            "run_length": config.run_length, "crop": list(config.crop), "freeze": list(config.freeze),
            "augment": {"stop": config.stop, "static_start": config.static_start, "mirror": config.mirror},
            "init": "imagenet", "init_source": f"{src.distribution}=={src.version} ({src.licence}): {src.relative}",
            "licence": "trained on DAVIS-2016 (CC BY-NC 4.0): non-commercial use"}
    return StagePlan(stage="visual_memory", model=model, phases=[(0, runs)], collate=collate_runs,
                     losses=_losses(config), save=save, export_path=config.export_path(), terms=TERMS,
                     val=val, score=held_out_j, plot_keys=("loss", "online_bce", "fine_bce", "offline_bce", "val_j_online", "val_j_offline"),
                     frozen=[model.encoder, *(getattr(model, m) for m in config.freeze)], meta=meta)


def train(config: MemoryTrainConfig, command: str = "") -> dict[str, Any]:
    return train_stage(config, plan, command)
