"""Which accelerator runs the heavy modules, at which precision, on which device, cached where."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from movseg_ros.accel.errors import AcceleratorConfigError

ACCELERATORS = ("auto", "tensorrt", "compile", "eager")
PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CACHE_ENV = "MOVSEG_CACHE"


@dataclass(frozen=True)
class AcceleratorConfig:
    """`accelerator: auto|tensorrt|compile|eager` and its settings; validated on construction.

    `cache_dir` empty means $MOVSEG_CACHE, else ~/.cache/movseg_ros/engines. `cuda_graphs` lets
    torch.compile capture CUDA graphs (shapes are static). fp16 runs on CUDA only; on the CPU it
    becomes fp32 and the build log line says so.
    """

    accelerator: str = "auto"
    precision: str = "fp32"
    cache_dir: str = ""
    cuda_graphs: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        for name, allowed in (("accelerator", ACCELERATORS), ("precision", PRECISIONS), ("device", DEVICES)):
            value = getattr(self, name)
            if value not in allowed:
                raise AcceleratorConfigError(f"{name} '{value}' is not one of {', '.join(allowed)}")
        if not isinstance(self.cuda_graphs, bool):
            raise AcceleratorConfigError(f"cuda_graphs must be true or false, got {self.cuda_graphs!r}")
        if not isinstance(self.cache_dir, str):
            raise AcceleratorConfigError(f"cache_dir must be a path string, got {self.cache_dir!r}")

    def cache_path(self) -> Path:
        """The engine cache directory this config names (not created here)."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        env = os.environ.get(CACHE_ENV, "")
        return Path(env).expanduser() if env else Path.home() / ".cache" / "movseg_ros" / "engines"

    def resolve_device(self) -> torch.device:
        """'auto' is CUDA when torch sees one, else the CPU; 'cuda' without one is an error."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise AcceleratorConfigError("device 'cuda' asked for but torch sees no CUDA device")
        return torch.device(self.device)


def effective_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The precision that will run on `device` and, when it differs from the one asked for, why."""
    if precision == "fp16" and device.type != "cuda":
        return "fp32", "fp16 needs CUDA, running fp32 on the cpu"
    return precision, ""
