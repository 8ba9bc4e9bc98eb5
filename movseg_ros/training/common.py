"""What every training stage shares: YAML configs into dataclasses, torchrun/DDP set-up, seeding,
the JSONL metrics log and its plot."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
import yaml

from movseg_ros.config_io import read_yaml_mapping
from movseg_ros.plots import pyplot, save_figure


class TrainConfigError(ValueError):
    """A training config that cannot be used: unknown key, wrong type, bad value; names the file/key."""


C = TypeVar("C")


def load_train_config(cls: type[C], path: Path | None, overrides: list[str] | None = None) -> C:
    """`cls` from a YAML mapping (unknown keys are an error), then `key=value` overrides (values in YAML syntax)."""
    where = str(path) if path else "defaults"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data.update(read_yaml_mapping(path))
        except (FileNotFoundError, ValueError) as e:
            raise TrainConfigError(str(e)) from None
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrainConfigError(f"override '{item}' is not key=value")
        try:
            data[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise TrainConfigError(f"override '{item}': value is not valid YAML: {e}") from None
    return config_from_dict(cls, data, where)


def config_from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Build the dataclass, checking names and coarse types; the dataclass's own checks then run."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise TrainConfigError(f"{where}: unknown key(s) {unknown}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        try:
            values[key] = _coerce(value, hints[key])
        except (TypeError, ValueError) as e:
            raise TrainConfigError(f"{where}: {key}: {e}") from None
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise TrainConfigError(f"{where}: {e}") from None


def _coerce(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r}")
        return tuple(_coerce(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise TypeError(f"expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    return value


@dataclass(frozen=True)
class RunSettings:
    """How a training run is driven, whatever it trains: where it writes, checkpoints, resume, device, threads,
    data workers. Every stage's config extends it (and calls its checks)."""

    checkpoint_every: int = 200
    out_dir: str = "out/train"
    export: str = ""  # final weights file (default: the stage's name in out_dir)
    seed: int = 0
    resume: bool = False
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 0  # torch.set_num_threads (0: torch's default)
    num_workers: int = 0  # DataLoader worker processes making data
    stop_after: int = 0  # end this invocation after this step (checkpointed; resume goes on); 0: run to the end

    def __post_init__(self) -> None:
        self.need(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        for name in ("threads", "num_workers", "stop_after"):
            self.need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        self.need(self.device in ("cpu", "cuda", "auto"), "device", f"'{self.device}' is not one of cpu, cuda, auto")

    def need(self, ok: bool, name: str, message: str) -> None:
        if not ok:
            raise TrainConfigError(f"training setting {name} {message}")


def check_seed_ranges(config: Any, scored: str) -> None:
    """config.train_seeds and config.heldout_seeds are ranges [start, stop) that do not overlap, and the held-out
    range has room for the `scored` setting's count of validation items."""
    for name in ("train_seeds", "heldout_seeds"):
        lo, hi = getattr(config, name)
        config.need(0 <= lo < hi, name, f"must be a range [start, stop) with 0 <= start < stop, got {(lo, hi)}")
    (a, b), (c, d) = config.train_seeds, config.heldout_seeds
    config.need(b <= c or d <= a, "heldout_seeds", f"{(c, d)} overlaps train_seeds {(a, b)}")
    count = getattr(config, scored)
    config.need(count <= d - c, scored, f"{count} is more than the {d - c} held-out seeds")


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly one-process) training run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str) -> DistContext:
    """One process, or one of WORLD_SIZE processes started by torchrun (gloo on CPU, nccl on CUDA)."""
    if device not in ("cpu", "cuda", "auto"):
        raise TrainConfigError(f"device '{device}' is not one of cpu, cuda, auto")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise TrainConfigError("device 'cuda' asked for but torch sees no CUDA device")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup_distributed(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def mean_across(ctx: DistContext, values: list[float]) -> list[float]:
    """Average scalars over the processes (identity in a one-process run)."""
    if not ctx.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return (t / ctx.world_size).tolist()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The RNG states a checkpoint carries (loadable with weights_only=True)."""
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


class MetricsLog:
    """Append-only JSONL, one record per line; on resume, records past the checkpoint's step are dropped."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            path.write_text("", encoding="utf-8")
        elif path.exists():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_metrics(records: list[dict[str, Any]], keys: list[str], png: Path, title: str) -> Path:
    """One panel per key against step (smoothed line over the raw points), saved as PNG."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(r["step"], r[key]) for r in records if key in r and r[key] is not None]
        if pts:
            steps, vals = map(np.asarray, zip(*pts))
            few = len(vals) < 100
            ax.plot(steps, vals, ".-" if few else ".", ms=5 if few else 2, alpha=0.8 if few else 0.35, label=key)
            if np.all(vals > 0):
                ax.set_yscale("log")
            k = max(1, len(vals) // 50)
            if k > 1:
                smooth = np.convolve(vals, np.ones(k) / k, mode="valid")
                ax.plot(steps[k - 1:], smooth, "-", lw=1.5, label=f"{key} (mean of {k})")
            ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    save_figure(fig, png)
    return png


class StepBatches:
    """Batch sampler: for step s, this rank's `batch` dataset indices (a fixed function of s), so a resumed
    run sees exactly the batches an uninterrupted one would."""

    def __init__(self, start: int, stop: int, batch: int, rank: int, world: int, length: int) -> None:
        self.start, self.stop, self.batch, self.rank, self.world, self.length = start, stop, batch, rank, world, length

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        for step in range(self.start, self.stop):
            base = (step * self.world + self.rank) * self.batch
            yield [(base + j) % self.length for j in range(self.batch)]


def save_training_state(path: Path, tag: tuple[str, str], model: torch.nn.Module, optimizer: Any, scheduler: Any,
                        step: int, elapsed: float, config: dict[str, Any]) -> None:
    """The resumable state of a run (model, optimiser, schedule, step, RNG, plain config), written atomically;
    `tag` = (key, value) names what it belongs to (("arch", "raft_small"), ("stage", "motion"), ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({tag[0]: tag[1], "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "elapsed": elapsed, "config": config,
                "rng": rng_state()}, tmp)
    tmp.replace(path)


def resume_training_state(path: Path, tag: tuple[str, str], iterations: int, model: torch.nn.Module, optimizer: Any,
                          scheduler: Any, device: torch.device) -> tuple[int, float]:
    """Load what save_training_state wrote into the run's objects; (step, elapsed seconds). TrainConfigError for
    no checkpoint, another run's (tag), or another length (the learning-rate schedule is fixed by it)."""
    if not path.exists():
        raise TrainConfigError(f"resume: no checkpoint {path} to resume from")
    state = torch.load(path, map_location=device, weights_only=True)
    key, value = tag
    if state.get(key) != value:
        raise TrainConfigError(f"resume: checkpoint {path} is for {key} '{state.get(key)}', not '{value}'")
    planned = state.get("config", {}).get("iterations")
    if planned != iterations:
        raise TrainConfigError(f"resume: checkpoint {path} belongs to a run of {planned} iterations, not "
                               f"{iterations} (the learning-rate schedule is fixed by it; split a run "
                               f"with stop_after instead)")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])  # the data need none: a step's batch is a function of the step
    return int(state["step"]), float(state.get("elapsed", 0.0))
