"""The training loop the network stages share (movseg train motion | appearance | joint | stemseg).

SGD with momentum or AdamW, linear warm-up then cosine decay, gradient clipping, step-indexed batches
(a resumed run sees the batches an uninterrupted one would), checkpoints that resume exactly, DDP when
started by torchrun, a JSONL metrics log with each loss term, held-out scores at every checkpoint, a
loss plot, and the final weights through the stage's own save function. A stage hands over a
StagePlan: its model, data phases, how a batch becomes losses, how held-out items are scored, and how
the weights are saved.
"""

from __future__ import annotations

import datetime
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from movseg_ros.model_files import ModelFileError, file_sha256, load_checkpoint, load_into
from movseg_ros.training.common import (DistContext, MetricsLog, RunSettings, TrainConfigError, cleanup_distributed,
                                        mean_across, plot_metrics, read_metrics, resume_training_state, save_training_state,
                                        seed_everything, setup_distributed)

CHECKPOINT = "checkpoint_last.pt"
METRICS = "metrics.jsonl"
PLOT = "metrics.png"
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class LoopConfig(RunSettings):
    """The run's settings plus the optimiser's, shared by every network stage; each stage's config adds its own."""

    iterations: int = 1000  # optimiser steps
    batch_size: int = 2  # items per step and process
    optimizer: str = "sgd"  # sgd (momentum) | adamw
    lr: float = 0.01  # peak learning rate
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1e-4
    warmup: int = 100  # steps of linear warm-up from lr / 10, then cosine decay to 0
    grad_clip: float = 10.0
    val_images: int = 16  # held-out items scored at every checkpoint (0: none)
    out_dir: str = "out/train/stage"
    start_from: str = ""  # a weights file of this stage (e.g. a finished run's export): a warm start with a fresh
    #   schedule, so a run that ended still improving can go on with new iterations (resume cannot: it is tied to them)
    start_from_new: tuple[str, ...] = ()  # key prefixes of modules the start_from file may lack (added since: e.g.
    #   "motion." for a motion input); they keep their fresh init. Every other key must be in the file, and nothing more

    def __post_init__(self) -> None:
        super().__post_init__()
        need = self.need
        for name in ("iterations", "batch_size"):
            need(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "val_images"):
            need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"'{self.optimizer}' is not one of {', '.join(OPTIMIZERS)}")
        need(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        need(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")
        need(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        need(self.grad_clip > 0, "grad_clip", f"must be > 0, got {self.grad_clip}")
        need(not self.start_from_new or bool(self.start_from), "start_from_new", "needs start_from")
        need(all(isinstance(p, str) and p.endswith(".") for p in self.start_from_new), "start_from_new",
             f"must be module prefixes ending in '.', got {list(self.start_from_new)}")


Losses = Callable[[nn.Module, dict[str, Any], torch.device], dict[str, torch.Tensor]]
Scores = Callable[[nn.Module, list[Any], torch.device], dict[str, Any]]


@dataclass
class StagePlan:
    """What a stage hands the shared loop."""

    stage: str  # names the progress bar, the plot and the checkpoint
    model: nn.Module
    phases: list[tuple[int, Dataset]]  # (first step, dataset): the data from that step on
    collate: Callable[[list[Any]], dict[str, Any]]
    losses: Losses  # (the model as trained, maybe DDP-wrapped; a collated batch; device) -> named loss terms
    save: Callable[[Path, nn.Module, dict[str, Any]], Path]  # final weights (path, model, meta) -> path written
    export_path: Path
    terms: tuple[str, ...] = ()  # loss terms logged every step (those missing from a step log 0)
    val: Dataset | None = None
    score: Scores | None = None  # held-out items -> {"val_...": number}
    plot_keys: tuple[str, ...] = ("loss",)
    frozen: list[nn.Module] = field(default_factory=list)  # kept in eval mode, no gradients
    meta: dict[str, Any] = field(default_factory=dict)  # stage-specific record for the weights file


class _PhasedBatches:
    """Step s's batch: indices into the concatenation of the phases' datasets, from the phase s is in."""

    def __init__(self, start: int, stop: int, batch: int, rank: int, world: int,
                 phases: list[tuple[int, int, int]]) -> None:
        self.start, self.stop, self.batch, self.rank, self.world, self.phases = start, stop, batch, rank, world, phases

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        for step in range(self.start, self.stop):
            _, offset, length = [p for p in self.phases if p[0] <= step][-1]
            base = (step * self.world + self.rank) * self.batch
            yield [offset + (base + j) % length for j in range(self.batch)]


def train_stage(config: LoopConfig, make_plan: Callable[[Any], StagePlan], command: str = "") -> dict[str, Any]:
    """Run (or resume) a stage; returns a summary. Only rank 0 writes files."""
    if config.threads:
        torch.set_num_threads(config.threads)
    ctx = setup_distributed(config.device)
    try:
        torch.manual_seed(config.seed)  # every rank builds the same initial weights
        plan = make_plan(config)
        return _train(config, plan, ctx, command or " ".join(sys.argv))
    finally:
        cleanup_distributed(ctx)


def _schedule(config: LoopConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup:
            return 0.1 + 0.9 * step / config.warmup
        span = max(1, config.iterations - config.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup) / span)))

    return factor


def _optimizer(config: LoopConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def _train(config: LoopConfig, plan: StagePlan, ctx: DistContext, command: str) -> dict[str, Any]:
    out = Path(config.out_dir)
    ckpt_path = out / CHECKPOINT
    model = plan.model.to(ctx.device)
    for module in plan.frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainConfigError(f"{plan.stage}: every parameter is frozen; nothing to train")
    optimizer = _optimizer(config, params)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    start, elapsed_before = 0, 0.0
    if config.start_from and not config.resume:  # a resumed run's checkpoint already holds what it started from
        warm_start(model, config.start_from, plan.stage, config.start_from_new)
    if config.resume:
        start, elapsed_before = resume_training_state(ckpt_path, ("stage", plan.stage), config.iterations, model,
                                                      optimizer, scheduler, ctx.device)
    else:
        seed_everything(config.seed + ctx.rank)
    net = DistributedDataParallel(model, find_unused_parameters=True) if ctx.distributed else model
    log = MetricsLog(out / METRICS, resume_step=start if config.resume else None) if ctx.is_main else None

    stop = min(config.iterations, config.stop_after) if config.stop_after else config.iterations
    if start >= stop:
        raise TrainConfigError(f"resume: the checkpoint {ckpt_path} is at step {start}, nothing left to do "
                               f"(iterations {config.iterations}, stop_after {config.stop_after})")
    datasets, spans, offset = [], [], 0
    for first, data in plan.phases:
        datasets.append(data)
        spans.append((first, offset, len(data)))
        offset += len(data)
    loader = DataLoader(torch.utils.data.ConcatDataset(datasets),
                        batch_sampler=_PhasedBatches(start, stop, config.batch_size, ctx.rank, ctx.world_size, spans),
                        num_workers=config.num_workers, collate_fn=plan.collate,
                        generator=torch.Generator().manual_seed(config.seed))  # not the global RNG: resume stays exact
    val_items = ([plan.val[i] for i in range(min(config.val_images, len(plan.val)))]
                 if plan.val is not None and plan.score is not None and ctx.is_main else [])
    bar = tqdm(total=config.iterations, initial=start, desc=f"train {plan.stage}", unit="step", file=sys.stderr,
               disable=not ctx.is_main, dynamic_ncols=True)
    t_run = time.perf_counter()
    step = start
    _set_train(model, plan.frozen)
    for batch in loader:
        t0 = time.perf_counter()
        losses = plan.losses(net, batch, ctx.device)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{plan.stage}: loss is {float(loss)} at step {step + 1} "
                                     f"(terms {({k: float(v) for k, v in losses.items()})}); lower lr or raise warmup")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        step += 1
        terms = [float(losses[k].detach()) if k in losses else 0.0 for k in plan.terms]
        reduced = mean_across(ctx, [float(loss.detach())] + terms)
        record = {"step": step, "loss": reduced[0], **dict(zip(plan.terms, reduced[1:])), "lr": lr,
                  "seconds": time.perf_counter() - t0, "elapsed": elapsed_before + time.perf_counter() - t_run}
        if ctx.is_main:
            assert log is not None
            log.write(record)
            bar.set_postfix(loss=f"{reduced[0]:.3f}")
            bar.update(1)
            if step % config.checkpoint_every == 0 or step == stop:
                if val_items:
                    assert plan.score is not None
                    log.write({"step": step, **plan.score(model, val_items, ctx.device)})
                    _set_train(model, plan.frozen)
                save_training_state(ckpt_path, ("stage", plan.stage), model, optimizer, scheduler, step,
                                    record["elapsed"], plain(config))
    bar.close()
    summary: dict[str, Any] = {"stage": plan.stage, "step": step, "out_dir": str(out)}
    if ctx.is_main:
        summary.update(_finish(config, plan, model, ctx, command, step))
    return summary


def warm_start(model: nn.Module, path: str | Path, stage: str, new: tuple[str, ...] = ()) -> None:
    """Every weight of `model` from the file at `path`, strictly (a ModelFileError names the file when a key or
    shape differs: another stage, or other architecture settings), except that keys under the prefixes `new`
    (modules the file predates) must be absent from it and keep the model's own values."""
    state = load_checkpoint(path, None)["state_dict"]
    if new:
        present = sorted(k for k in state if k.startswith(new))
        if present:
            raise ModelFileError(path, f"start_from_new {list(new)}: the file already has {len(present)} such "
                                       f"key(s), e.g. {', '.join(present[:3])}; drop start_from_new")
        own = model.state_dict()
        state = {**state, **{k: v for k, v in own.items() if k.startswith(new)}}
    load_into(model, state, path, stage)


def _set_train(model: nn.Module, frozen: list[nn.Module]) -> None:
    model.train()
    for module in frozen:
        module.eval()


def _finish(config: LoopConfig, plan: StagePlan, model: nn.Module, ctx: DistContext, command: str,
            step: int) -> dict[str, Any]:
    out = Path(config.out_dir)
    records = read_metrics(out / METRICS)
    plot_metrics(records, list(plan.plot_keys), out / PLOT, f"movseg train {plan.stage}")
    train_recs = [r for r in records if "loss" in r]
    tail = train_recs[-50:]
    scored = [r for r in records if "loss" not in r]
    summary: dict[str, Any] = {
        "final_loss": float(np.mean([r["loss"] for r in tail])) if tail else None,
        **({k: v for k, v in scored[-1].items() if k != "step"} if scored else {}),
        "wall_seconds": train_recs[-1]["elapsed"] if train_recs else 0.0,
        "metrics": str(out / METRICS), "plot": str(out / PLOT), "checkpoint": str(out / CHECKPOINT),
    }
    meta = {
        "command": command, "date": datetime.date.today().isoformat(), "stage": plan.stage, "iterations": step,
        "world_size": ctx.world_size,
        "heldout_val": {"items": config.val_images, **({k: v for k, v in scored[-1].items() if k != "step"} if scored else {})},
        "final_loss": summary["final_loss"], "wall_seconds": summary["wall_seconds"],
        "torch": str(torch.__version__), "threads": torch.get_num_threads(), "config": plain(config),
        **({"start_from_sha256": file_sha256(config.start_from)} if config.start_from else {}), **plan.meta,
    }
    model.to("cpu")
    summary["weights"] = str(plan.save(plan.export_path, model, meta))
    return summary


def plain(config: Any) -> dict[str, Any]:
    """A config as plain data (tuples as lists) for checkpoints and metadata."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
