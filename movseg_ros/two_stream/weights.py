"""Saving and loading the three seed-000 models through the one weights loader (movseg_ros.model_files).

A file records its kind ("motion_mask_rcnn", "appearance_mask_rcnn", "two_stream_mask_rcnn") and its
DetectorArch in meta["arch_settings"], so the model is rebuilt before the strict load. Shipped files keep
floating tensors in fp16 (half the size); they load into fp32 models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from movseg_ros.model_files import ModelFileError, load_into, load_with_settings, save_with_settings
from movseg_ros.two_stream.arch import ArchError, DetectorArch, arch_name
from movseg_ros.two_stream.models import TwoStreamMaskRCNN, build_single_stream


def build_model(kind: str, arch: DetectorArch, min_size: int = 240, **two_stream_options: Any) -> nn.Module:
    """An untrained model of `kind` (motion | appearance | two_stream)."""
    if kind == "two_stream":
        return TwoStreamMaskRCNN(arch, min_size=min_size, **two_stream_options)
    if kind in ("motion", "appearance"):
        return build_single_stream(arch, kind, min_size=min_size)
    raise ArchError(f"model kind '{kind}' is not one of motion, appearance, two_stream")


def load_model(path: Path | str, kind: str, min_size: int = 240, **two_stream_options: Any) -> tuple[nn.Module, dict[str, Any]]:
    """The model in `path` (of `kind`), in eval mode on the CPU, and the file's meta.

    ModelFileError names the file for: no such file, not a torch file, another kind of model, no or bad
    architecture record, or tensors that do not fit.
    """
    settings, state, meta = load_with_settings(path, arch_name(kind), f"movseg train {_stage(kind)}")
    try:
        arch = DetectorArch.from_dict(settings)
    except (ArchError, TypeError) as e:
        raise ModelFileError(path, f"bad architecture record: {e}") from None
    model = build_model(kind, arch, min_size=min_size, **two_stream_options)
    load_into(model, state, path, arch_name(kind))
    model.eval()
    return model, meta


def weights_kind(path: Path | str) -> str:
    """The model kind a weights file holds (motion | appearance | two_stream); ModelFileError names the file
    when it is none of the three."""
    from movseg_ros.model_files import load_checkpoint

    arch = load_checkpoint(path, expected_arch=None)["arch"]
    kinds = {arch_name(k): k for k in ("motion", "appearance", "two_stream")}
    if arch not in kinds:
        raise ModelFileError(path, f"checkpoint is for architecture '{arch}', expected one of {', '.join(kinds)}")
    return kinds[arch]


def save_model(path: Path | str, kind: str, model: nn.Module, arch: DetectorArch, meta: dict[str, Any],
               half: bool = True) -> Path:
    """Write `model` in our checkpoint format with its architecture record; fp16 floats when `half`."""
    return save_with_settings(path, arch_name(kind), model, arch.to_dict(), {**meta, "kind": kind}, half)


def _stage(kind: str) -> str:
    return {"two_stream": "joint"}.get(kind, kind)
