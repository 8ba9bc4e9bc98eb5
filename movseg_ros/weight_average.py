"""Weight averaging of runs of one model (a warm start and its fine-tune): the average often beats both.

Files must be our checkpoints of one architecture with equal architecture settings, keys and shapes; the
floating tensors are averaged in fp32, the others (counters) taken from the first file. The result keeps the
last file's meta (its training command, data and split), records every input's path and SHA-256 and the
averaging command, and is stored in fp16 when any input was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from movseg_ros.model_files import ModelFileError, file_sha256, load_checkpoint, write_checkpoint


def _settings_types() -> dict[str, Callable[[dict[str, Any]], Any]]:
    """Each architecture's settings class (its constructor from a record), by the arch name files record."""
    from movseg_ros.refine.network import ARCH as REFINE, RefineArch
    from movseg_ros.saliency.network import ARCH as SALIENCY, SaliencyArch
    from movseg_ros.stem_seg.arch import StemSegArch
    from movseg_ros.stem_seg.network import ARCH_NAME as STEMSEG
    from movseg_ros.two_stream.arch import KINDS, DetectorArch, arch_name
    from movseg_ros.visual_memory.mpnet import ARCH as MPNET, MPNetArch
    from movseg_ros.visual_memory.network import ARCH as MEMORY, MemoryArch

    types: dict[str, Callable[[dict[str, Any]], Any]] = {
        MEMORY: lambda d: MemoryArch(**d), MPNET: lambda d: MPNetArch(**d), SALIENCY: lambda d: SaliencyArch(**d),
        REFINE: lambda d: RefineArch(**d), STEMSEG: StemSegArch.from_dict}
    types.update({arch_name(kind): DetectorArch.from_dict for kind in KINDS})
    return types


def complete_settings(arch: str, settings: Any) -> Any:
    """A file's architecture settings with the defaults filled in for keys it predates (files written before a
    setting existed were built with its default), so two runs of one model compare equal; as recorded for an
    architecture this package does not know, or a record its settings class refuses."""
    build = _settings_types().get(arch)
    if build is None or not isinstance(settings, dict):
        return settings
    try:
        return dataclasses.asdict(build(settings))
    except (TypeError, ValueError):
        return settings


def average_checkpoints(paths: Sequence[Path | str], out: Path | str, command: str = "") -> dict[str, Any]:
    """Write the mean of `paths`' weights to `out`; returns a summary. ModelFileError names the file that
    does not fit the first (another architecture, other settings, keys or shapes)."""
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least two weights files, got {len(paths)}")
    first = load_checkpoint(paths[0], None)
    if first["arch"] is None:
        raise ModelFileError(paths[0], "a plain state dict has no architecture record; average movseg checkpoints")
    settings = complete_settings(first["arch"], first["meta"].get("arch_settings"))
    total = {k: v.float().clone() if v.is_floating_point() else v.clone() for k, v in first["state_dict"].items()}
    half = first["meta"].get("stored_dtype") == "float16"
    meta: dict[str, Any] = first["meta"]
    for path in paths[1:]:
        other = load_checkpoint(path, first["arch"])
        theirs = complete_settings(first["arch"], other["meta"].get("arch_settings"))
        if theirs != settings:
            odd = sorted(k for k in set(theirs) | set(settings) if theirs.get(k) != settings.get(k)) \
                if isinstance(theirs, dict) and isinstance(settings, dict) else []
            raise ModelFileError(path, f"architecture settings differ from {paths[0]}'s"
                                       f"{' in ' + ', '.join(odd) if odd else ''}: {theirs} vs {settings}")
        state = other["state_dict"]
        if set(state) != set(total):
            odd = sorted(set(state) ^ set(total))
            raise ModelFileError(path, f"{len(odd)} key(s) not in both it and {paths[0]}, e.g. {', '.join(odd[:4])}")
        for k, v in state.items():
            if v.shape != total[k].shape:
                raise ModelFileError(path, f"tensor {k} is {tuple(v.shape)}, {tuple(total[k].shape)} in {paths[0]}")
            if v.is_floating_point():
                total[k] += v.float()
        half = half or other["meta"].get("stored_dtype") == "float16"
        meta = other["meta"]
    dtype = torch.float16 if half else torch.float32
    state = {k: (v / len(paths)).to(dtype) if v.is_floating_point() else v for k, v in total.items()}
    sources = [{"path": str(p), "sha256": file_sha256(p)} for p in paths]
    if isinstance(settings, dict):
        meta = {**meta, "arch_settings": settings}
    meta = {**meta, "averaged_from": sources, **({"average_command": command} if command else {})}
    if half:
        meta["stored_dtype"] = "float16"
    out = write_checkpoint(out, first["arch"], state, meta)
    return {"arch": first["arch"], "inputs": sources, "out": str(out), "sha256": file_sha256(out),
            "tensors": len(state), "stored_dtype": "float16" if half else "float32"}
