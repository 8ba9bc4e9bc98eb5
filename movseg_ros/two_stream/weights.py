"""Saving and loading the three seed-000 models through the one weights loader (movseg_ros.model_files).

A file records its kind ("motion_mask_rcnn", "appearance_mask_rcnn", "two_stream_mask_rcnn") and its
DetectorArch in meta["arch_settings"], so the model is rebuilt before the strict load. Shipped files keep
floating tensors in fp16 (half the size); they load into fp32 models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from movseg_ros.model_files import ModelFileError, load_checkpoint, load_into, save_checkpoint
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
    ckpt = load_checkpoint(path, arch_name(kind))
    if ckpt["arch"] is None:
        raise ModelFileError(path, f"a plain state dict has no architecture record; {kind} weights must be a "
                                   f"movseg checkpoint (movseg train {_stage(kind)} writes one)")
    settings = ckpt["meta"].get("arch_settings")
    if not isinstance(settings, dict):
        raise ModelFileError(path, "meta has no 'arch_settings' (the backbone and head sizes to build)")
    try:
        arch = DetectorArch.from_dict(settings)
    except (ArchError, TypeError) as e:
        raise ModelFileError(path, f"bad architecture record: {e}") from None
    model = build_model(kind, arch, min_size=min_size, **two_stream_options)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    load_into(model, state, path, arch_name(kind))
    model.eval()
    return model, ckpt["meta"]


def save_model(path: Path | str, kind: str, model: nn.Module, arch: DetectorArch, meta: dict[str, Any],
               half: bool = True) -> Path:
    """Write `model` in our checkpoint format with its architecture record; fp16 floats when `half`."""
    path = save_checkpoint(path, arch_name(kind), model, {**meta, "arch_settings": arch.to_dict(), "kind": kind})
    if half:
        data = torch.load(path, map_location="cpu", weights_only=True)
        data["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
        data["meta"]["stored_dtype"] = "float16"
        torch.save(data, path)
    return Path(path)


def _stage(kind: str) -> str:
    return {"two_stream": "joint"}.get(kind, kind)
