"""Every TensorRT-specific call in one place: availability, engine build, save and load (dynamo path).

Written to the torch-tensorrt documentation (user guide "Saving models compiled with
Torch-TensorRT" and "Compiling Exported Programs"): `torch_tensorrt.compile(module, ir="dynamo",
arg_inputs=[torch_tensorrt.Input(shape, dtype=...)], enabled_precisions={...})` builds a GraphModule
holding TensorRT engines for static input shapes; `torch_tensorrt.save(gm, path,
output_format="exported_program", arg_inputs=...)` writes it and `torch.export.load(path).module()`
reads it back (the torch_tensorrt runtime must be imported first so its engine op exists).

This path was NOT run: TensorRT's runtime libraries cannot be installed on the project's machines
(ENVIRONMENT.md). Only `tensorrt_available` and the fall-back it drives are tested here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Sequence

import torch
from torch import nn

SUFFIX = ".ep"  # torch_tensorrt.save's exported-program format


def _import_torch_tensorrt() -> ModuleType:
    """torch_tensorrt, imported only when asked for (its import is slow and may fail in many ways)."""
    return importlib.import_module("torch_tensorrt")


def tensorrt_available(device: torch.device) -> tuple[bool, str]:
    """(True, "") when TensorRT can build engines for `device`, else (False, why not)."""
    problems = []
    if device.type != "cuda":
        problems.append(f"needs a CUDA device (running on {device.type})")
    try:
        _import_torch_tensorrt()
    except Exception as e:  # ImportError, or OSError/RuntimeError from missing TensorRT libraries
        problems.append(str(e).splitlines()[0] if str(e) else type(e).__name__)
    return not problems, "; ".join(problems)


def build_engine(module: nn.Module, example_inputs: Sequence[torch.Tensor], dtype: torch.dtype) -> nn.Module:
    """Compile `module` for exactly these input shapes and dtype into TensorRT engines (not run here)."""
    trt = _import_torch_tensorrt()
    inputs = [trt.Input(tuple(x.shape), dtype=x.dtype) for x in example_inputs]
    return trt.compile(module, ir="dynamo", arg_inputs=inputs, enabled_precisions={dtype}, min_block_size=1)


def save_engine(engine: nn.Module, path: Path, example_inputs: Sequence[torch.Tensor]) -> None:
    """Serialise the compiled module as an exported program holding its engines (not run here)."""
    trt = _import_torch_tensorrt()
    trt.save(engine, str(path), output_format="exported_program", arg_inputs=list(example_inputs))


def load_engine(path: Path) -> nn.Module:
    """Read an engine file written by `save_engine` (not run here)."""
    _import_torch_tensorrt()  # registers torch.ops.tensorrt.execute_engine, which the file calls
    return torch.export.load(str(path)).module()
