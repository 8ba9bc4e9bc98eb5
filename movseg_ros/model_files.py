"""Loading model weights from files: one loader for every learned model, with errors that name the file.

Our checkpoints are dicts {"arch": str, "state_dict": {...}, "meta": {...}}; a plain state dict (such
as torchvision's published checkpoints) is accepted too, and is then checked against the module's keys
and shapes instead of by its recorded arch.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from movseg_ros.safe_text import printable

ERROR_TEXT_LIMIT = 300  # characters of a library's error text kept in a ModelFileError


class ModelFileError(ValueError):
    """A weights file that is missing, unreadable, of another architecture, or of other shapes."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"weights {printable(self.path, 400)}: {problem}")  # a path is text from outside


def file_sha256(path: Path | str) -> str:
    """A file's SHA-256: which weights a model learned from or started from, recorded in its own file's meta."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_checkpoint(path: Path | str, expected_arch: str | None) -> dict[str, Any]:
    """The file's contents as {"arch", "state_dict", "meta"}; "arch" is None for a plain state dict.
    `expected_arch` None takes a checkpoint of any architecture (the caller checks "arch").

    Raises ModelFileError for a missing file, a file torch cannot read (not a torch file, truncated),
    a checkpoint recorded for another architecture than `expected_arch`, or contents of another kind.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "no such file")
    if not path.is_file():
        raise ModelFileError(path, "is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), "")
        if unsafe:
            raise ModelFileError(path, f"holds objects other than tensors and plain data, refused by the safe "
                                       f"loader ({_one_line(unsafe)})") from None
        raise ModelFileError(path, f"not a readable torch file (corrupt or truncated?): the weights-only "
                                   f"unpickler failed: {_one_line(_unpickler_reason(str(e)))}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError,
            AttributeError, IndexError, AssertionError, TypeError, struct.error) as e:
        raise ModelFileError(path, f"not a readable torch file (corrupt or truncated?): "
                                   f"{_one_line(f'{type(e).__name__}: {e}')}") from None
    if not isinstance(data, dict):
        raise ModelFileError(path, f"expected a checkpoint or a state dict, got a {type(data).__name__}")
    if "state_dict" in data:
        arch = data.get("arch")
        state = data["state_dict"]
        meta = data.get("meta") or {}
        if expected_arch is not None and arch != expected_arch:
            raise ModelFileError(path, f"checkpoint is for architecture '{arch}', expected '{expected_arch}'")
    else:
        arch, state, meta = None, data, {}
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(path, "state_dict is empty or holds things other than tensors")
    return {"arch": arch, "state_dict": state, "meta": meta if isinstance(meta, dict) else {}}


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path | str, expected_arch: str = "") -> None:
    """Copy `state` into `module`, strictly: missing, unexpected or mis-shaped keys are a ModelFileError.

    `expected_arch` only words the error (a raw state dict of another architecture fails here).
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    what = f" for '{expected_arch}'" if expected_arch else ""
    if shapes:
        raise ModelFileError(path, f"{len(shapes)} tensor shape(s) do not match the model{what} "
                                   f"(file vs model), e.g. {'; '.join(shapes[:4])}")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} key(s) missing, e.g. {', '.join(missing[:4])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:4])}")
        raise ModelFileError(path, f"weights do not fit the model{what} (another architecture?): {'; '.join(parts)}")
    module.load_state_dict(state, strict=True)


def save_checkpoint(path: Path | str, arch: str, module: nn.Module, meta: dict[str, Any]) -> Path:
    """Write our checkpoint format {"arch","state_dict","meta"} (tensors on the CPU)."""
    return write_checkpoint(path, arch, {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}, meta)


def write_checkpoint(path: Path | str, arch: str, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write a state dict in our checkpoint format, through a temporary file so a reader never sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"arch": arch, "state_dict": state, "meta": meta}, tmp)
    tmp.replace(path)
    return path


def load_with_settings(path: Path | str, expected_arch: str, how_made: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """(architecture settings, fp32 state dict, meta) of a checkpoint that records the settings its model is
    rebuilt from in meta["arch_settings"]. ModelFileError names the file, also for a plain state dict (no
    record; `how_made` says which command writes one) and a meta without settings."""
    ckpt = load_checkpoint(path, expected_arch)
    if ckpt["arch"] is None:
        raise ModelFileError(path, f"a plain state dict has no architecture record; {expected_arch} weights must be "
                                   f"a movseg checkpoint ({how_made} writes one)")
    settings = ckpt["meta"].get("arch_settings")
    if not isinstance(settings, dict):
        raise ModelFileError(path, "meta has no 'arch_settings' (the sizes to build the model with)")
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    return settings, state, ckpt["meta"]


def load_rebuilt(path: Path | str, expected_arch: str, how_made: str,
                 rebuild: Callable[[dict[str, Any]], nn.Module]) -> tuple[nn.Module, dict[str, Any]]:
    """The model in `path` rebuilt by `rebuild(settings)` from its recorded settings, its weights loaded (eval
    mode, CPU, fp32), and its meta; ModelFileError names the file, also for a settings record that `rebuild`
    refuses (TypeError or ValueError)."""
    settings, state, meta = load_with_settings(path, expected_arch, how_made)
    try:
        model = rebuild(settings)
    except (TypeError, ValueError) as e:
        raise ModelFileError(path, f"bad architecture record: {e}") from None
    load_into(model, state, path, expected_arch)
    return model.eval(), meta


def save_with_settings(path: Path | str, arch: str, module: nn.Module, settings: dict[str, Any], meta: dict[str, Any],
                       half: bool = True) -> Path:
    """save_checkpoint with the settings in meta["arch_settings"]; fp16 floating tensors when `half` (shipped
    files: half the size; they load into fp32 models)."""
    record = {**meta, "arch_settings": settings}
    path = save_checkpoint(path, arch, module, record)
    if half:
        data = torch.load(path, map_location="cpu", weights_only=True)
        data["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
        data["meta"]["stored_dtype"] = "float16"
        torch.save(data, path)
    return Path(path)


def _one_line(text: str) -> str:
    """A library's error text whole where it fits: on one line, control characters escaped, and past
    ERROR_TEXT_LIMIT characters cut at a word boundary with an explicit "…" and the count left out."""
    flat = printable(" ".join(text.split()), sys.maxsize)
    if len(flat) <= ERROR_TEXT_LIMIT:
        return flat
    cut = flat.rfind(" ", 0, ERROR_TEXT_LIMIT)
    cut = cut if cut > ERROR_TEXT_LIMIT // 2 else ERROR_TEXT_LIMIT  # one very long word: cut inside it
    return f"{flat[:cut]} … [{len(flat) - cut:,} more characters]"


def _unpickler_reason(text: str) -> str:
    """torch's weights-only unpickler's own reason (e.g. "Unsupported operand 149") from inside the
    advice around it, or the whole text when it has no such part."""
    _, found, reason = text.partition("WeightsUnpickler error:")
    return reason.split("Check the documentation")[0] if found else text
