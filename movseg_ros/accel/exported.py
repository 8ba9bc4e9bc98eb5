"""Ahead-of-time exported graphs (torch.export): the artifact `movseg export` writes for compile/eager.

An exported program loads without tracing the Python model code again and runs on the CPU, so the
engine cache can be built, hit and invalidated here just as it is for TensorRT engines on a GPU.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.export import ExportedProgram

SUFFIX = ".pt2"


def export_program(module: nn.Module, example_inputs: Sequence[torch.Tensor]) -> ExportedProgram:
    """The module traced for these example inputs' shapes and dtypes (static shapes).

    torchvision's RAFT keeps its correlation pyramid in a plain attribute, which torch.export warns
    about; the pyramid is recomputed inside the graph on every call (checked: the exported RAFT
    matches eager on new inputs exactly), so that one warning is silenced.
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The tensor attributes .* were assigned during export")
        return torch.export.export(module, tuple(example_inputs))


def save_program(program: ExportedProgram, path: Path) -> None:
    torch.export.save(program, str(path))


def load_program(path: Path) -> ExportedProgram:
    return torch.export.load(str(path))
