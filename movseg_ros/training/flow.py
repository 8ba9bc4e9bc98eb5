"""`movseg train flow`: RAFT on the synthetic generator's exact flow with RAFT's sequence loss.

AdamW + OneCycleLR, gradient clipping, deterministic data (batch b of step s is always the same
clips and crops), checkpoints that resume exactly, DDP when started by torchrun, and the final
weights in our checkpoint format {"arch", "state_dict", "meta"}.
"""

from __future__ import annotations

import datetime
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from movseg_ros.learned_flow.data import FlowPairDataset
from movseg_ros.learned_flow.loss import end_point_error, sequence_loss
from movseg_ros.learned_flow.raft import ARCHS, MIN_SIDE, build_raft
from movseg_ros.model_files import save_checkpoint
from movseg_ros.synth.config import PRESETS, SynthConfig, preset
from movseg_ros.training.common import (DistContext, MetricsLog, RunSettings, StepBatches, TrainConfigError,
                                        check_seed_ranges, cleanup_distributed, mean_across, plot_metrics,
                                        read_metrics, resume_training_state, save_training_state, seed_everything,
                                        setup_distributed)

CHECKPOINT = "checkpoint_last.pt"
METRICS = "metrics.jsonl"
PLOT = "metrics.png"


@dataclass(frozen=True)
class FlowTrainConfig(RunSettings):
    """Everything a flow training run is fixed by (with the run settings every stage has)."""

    arch: str = "raft_small"
    iterations: int = 1000  # optimiser steps
    batch_size: int = 2  # per process
    lr: float = 4e-4  # OneCycleLR's peak
    weight_decay: float = 1e-4
    pct_start: float = 0.05  # fraction of the run spent warming the learning rate up
    grad_clip: float = 1.0
    num_flow_updates: int = 6  # RAFT refinement iterations while training
    gamma: float = 0.8  # sequence-loss decay: prediction i of N weighs gamma^(N-1-i)
    max_flow: float = 400.0  # pixels with a longer true flow are left out of the loss
    preset: str = "motion"  # synthetic generator preset
    synth: dict[str, Any] = field(default_factory=dict)  # generator settings changed from the preset (SynthConfig fields)
    size: tuple[int, int] = (256, 192)  # generated frame size (width, height)
    crop: tuple[int, int] | None = None  # random crop (width, height) of each pair; None: whole frame
    train_seeds: tuple[int, int] = (0, 100000)  # clip seeds [start, stop) drawn for training
    heldout_seeds: tuple[int, int] = (100000, 100050)  # held-out clip seeds [start, stop): never trained on
    val_pairs: int = 8  # held-out pairs scored at every checkpoint (0: none)
    out_dir: str = "out/train/flow"  # final weights default to <out_dir>/<arch>_synth.pt

    def __post_init__(self) -> None:
        super().__post_init__()
        need = self.need
        need(self.arch in ARCHS, "arch", f"'{self.arch}' is not one of {', '.join(ARCHS)}")
        for name in ("iterations", "batch_size", "num_flow_updates"):
            need(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        need(self.val_pairs >= 0, "val_pairs", f"must be >= 0, got {self.val_pairs}")
        need(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        need(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        need(0 < self.pct_start < 1, "pct_start", f"must be in (0, 1), got {self.pct_start}")
        need(self.grad_clip > 0, "grad_clip", f"must be > 0, got {self.grad_clip}")
        need(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        need(self.preset in PRESETS, "preset", f"'{self.preset}' is not one of {', '.join(PRESETS)}")
        need(isinstance(self.synth, dict), "synth", f"must be a mapping of generator settings, got {self.synth!r}")
        self.synth_config()  # unknown or out-of-range generator settings fail here, named
        w, h = self.crop if self.crop is not None else self.size
        need(min(w, h) >= MIN_SIDE and w % 8 == 0 and h % 8 == 0, "crop/size",
             f"training frames must be multiples of 8 and at least {MIN_SIDE} px a side (RAFT's correlation "
             f"pyramid), got {w}x{h}")
        if self.crop is not None:
            need(self.crop[0] <= self.size[0] and self.crop[1] <= self.size[1], "crop",
                 f"{self.crop} is larger than size {self.size}")
        check_seed_ranges(self, "val_pairs")

    def synth_config(self) -> SynthConfig:
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in self.synth.items()}
        return preset(self.preset).replace(**changes).replace(width=self.size[0], height=self.size[1], frames=2)

    def export_path(self) -> Path:
        return Path(self.export) if self.export else Path(self.out_dir) / f"{self.arch}_synth.pt"


CONFIG = FlowTrainConfig


def train(config: FlowTrainConfig, command: str = "") -> dict[str, Any]:
    """Run (or resume) the training; returns a summary. Only rank 0 writes files."""
    if config.threads:
        torch.set_num_threads(config.threads)
    ctx = setup_distributed(config.device)
    try:
        return _train(config, ctx, command or " ".join(sys.argv))
    finally:
        cleanup_distributed(ctx)


def _train(config: FlowTrainConfig, ctx: DistContext, command: str) -> dict[str, Any]:
    out = Path(config.out_dir)
    ckpt_path = out / CHECKPOINT
    torch.manual_seed(config.seed)  # every rank starts from the same weights
    model = build_raft(config.arch).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, eps=1e-8)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.iterations, pct_start=config.pct_start,
        cycle_momentum=False, anneal_strategy="linear")
    start, elapsed_before = 0, 0.0
    if config.resume:
        start, elapsed_before = resume_training_state(ckpt_path, ("arch", config.arch), config.iterations, model,
                                                      optimizer, scheduler, ctx.device)
    else:
        seed_everything(config.seed + ctx.rank)
    net = DistributedDataParallel(model) if ctx.distributed else model
    log = MetricsLog(out / METRICS, resume_step=start if config.resume else None) if ctx.is_main else None

    synth = config.synth_config()
    lo, hi = config.train_seeds
    data = FlowPairDataset(synth, range(lo, hi), crop=config.crop, crop_seed=config.seed)
    stop = min(config.iterations, config.stop_after) if config.stop_after else config.iterations
    if start >= stop:
        raise TrainConfigError(f"resume: the checkpoint {ckpt_path} is at step {start}, nothing left to do "
                               f"(iterations {config.iterations}, stop_after {config.stop_after})")
    loader = DataLoader(data, batch_sampler=StepBatches(start, stop, config.batch_size, ctx.rank,
                                                         ctx.world_size, len(data)),
                        num_workers=config.num_workers)
    val = _val_pairs(config, synth) if ctx.is_main else []
    bar = tqdm(total=config.iterations, initial=start, desc="train flow", unit="step", file=sys.stderr,
               disable=not ctx.is_main, dynamic_ncols=True)
    t_run = time.perf_counter()
    step = start
    last: dict[str, Any] = {}
    net.train()
    for batch in loader:
        t0 = time.perf_counter()
        img1, img2 = batch["image1"].to(ctx.device), batch["image2"].to(ctx.device)
        target = batch["flow"].to(ctx.device)
        preds = net(img1, img2, num_flow_updates=config.num_flow_updates)
        loss = sequence_loss(preds, target, config.gamma, config.max_flow)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        step += 1
        with torch.no_grad():
            epe = end_point_error(preds[-1].detach(), target, config.max_flow)
        loss_v, epe_v = mean_across(ctx, [float(loss.detach()), float(epe)])
        last = {"step": step, "loss": loss_v, "epe": epe_v, "lr": lr, "seconds": time.perf_counter() - t0,
                "elapsed": elapsed_before + time.perf_counter() - t_run}
        if ctx.is_main:
            assert log is not None
            log.write(last)
            bar.set_postfix(loss=f"{loss_v:.3f}", epe=f"{epe_v:.3f}")
            bar.update(1)
            if step % config.checkpoint_every == 0 or step == stop:
                record = {"step": step, "val_epe": _val_epe(model, val, config, ctx.device)} if val else None
                if record:
                    log.write(record)
                    model.train()
                save_training_state(ckpt_path, ("arch", config.arch), model, optimizer, scheduler, step, last["elapsed"],
                                    _plain(config))
    bar.close()
    summary: dict[str, Any] = {"step": step, "out_dir": str(out)}
    if ctx.is_main:
        records = read_metrics(out / METRICS)
        plot_metrics(records, ["loss", "epe", "val_epe"], out / PLOT, f"{config.arch} on synth '{config.preset}'")
        train_recs = [r for r in records if "loss" in r]
        tail = train_recs[-50:]
        vals = [r["val_epe"] for r in records if "val_epe" in r]
        summary.update({
            "final_loss": float(np.mean([r["loss"] for r in tail])) if tail else None,
            "final_train_epe": float(np.mean([r["epe"] for r in tail])) if tail else None,
            "val_epe": vals[-1] if vals else None,
            "wall_seconds": train_recs[-1]["elapsed"] if train_recs else 0.0,
            "metrics": str(out / METRICS), "plot": str(out / PLOT), "checkpoint": str(ckpt_path),
        })
        meta = {
            "command": command, "date": datetime.date.today().isoformat(), "iterations": step,
            "num_flow_updates": config.num_flow_updates, "world_size": ctx.world_size,
            "data": {"generator": "movseg_ros.synth", "preset": config.preset, "synth": dict(config.synth), "size": list(config.size),
                     "crop": list(config.crop) if config.crop else None, "train_seeds": list(config.train_seeds),
                     "heldout_seeds": list(config.heldout_seeds)},
            "epe": {"train_last50": summary["final_train_epe"], "heldout_val": summary["val_epe"],
                    "val_pairs": config.val_pairs},
            "final_loss": summary["final_loss"], "wall_seconds": summary["wall_seconds"],
            "torch": str(torch.__version__), "threads": torch.get_num_threads(), "config": _plain(config),
        }
        summary["weights"] = str(save_checkpoint(config.export_path(), config.arch, model, meta))
    return summary


def _plain(config: FlowTrainConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def _val_pairs(config: FlowTrainConfig, synth: SynthConfig) -> list[dict[str, Any]]:
    lo, _ = config.heldout_seeds
    data = FlowPairDataset(synth, range(lo, lo + config.val_pairs))
    return [data[i] for i in range(len(data))]


def _val_epe(model: torch.nn.Module, pairs: list[dict[str, Any]], config: FlowTrainConfig,
             device: torch.device) -> float:
    """Mean EPE of the final prediction on the held-out pairs (whole frames)."""
    model.eval()
    errs = []
    with torch.no_grad():
        for p in pairs:
            pred = model(p["image1"][None].to(device), p["image2"][None].to(device),
                         num_flow_updates=config.num_flow_updates)[-1]
            errs.append(float(end_point_error(pred, p["flow"][None].to(device))))
    return float(np.mean(errs))
