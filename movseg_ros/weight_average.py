"""Weight averaging of runs of one model (a warm start and its fine-tune): the average often beats both.

Files must be our checkpoints of one architecture with equal architecture settings, keys and shapes; the
floating tensors are averaged in fp32, the others (counters) taken from the first file. The result keeps the
last file's meta (its training command, data and split), records every input's path and SHA-256 and the
averaging command, and is stored in fp16 when any input was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from movseg_ros.model_files import ModelFileError, file_sha256, load_checkpoint, write_checkpoint


def average_checkpoints(paths: Sequence[Path | str], out: Path | str, command: str = "") -> dict[str, Any]:
    """Write the mean of `paths`' weights to `out`; returns a summary. ModelFileError names the file that
    does not fit the first (another architecture, other settings, keys or shapes)."""
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least two weights files, got {len(paths)}")
    first = load_checkpoint(paths[0], None)
    if first["arch"] is None:
        raise ModelFileError(paths[0], "a plain state dict has no architecture record; average movseg checkpoints")
    settings = first["meta"].get("arch_settings")
    total = {k: v.float().clone() if v.is_floating_point() else v.clone() for k, v in first["state_dict"].items()}
    half = first["meta"].get("stored_dtype") == "float16"
    meta: dict[str, Any] = first["meta"]
    for path in paths[1:]:
        other = load_checkpoint(path, first["arch"])
        if other["meta"].get("arch_settings") != settings:
            raise ModelFileError(path, f"architecture settings differ from {paths[0]}'s: "
                                       f"{other['meta'].get('arch_settings')} vs {settings}")
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
    meta = {**meta, "averaged_from": sources, **({"average_command": command} if command else {})}
    if half:
        meta["stored_dtype"] = "float16"
    out = write_checkpoint(out, first["arch"], state, meta)
    return {"arch": first["arch"], "inputs": sources, "out": str(out), "sha256": file_sha256(out),
            "tensors": len(state), "stored_dtype": "float16" if half else "float32"}
