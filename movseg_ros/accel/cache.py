"""On-disk cache of built artifacts (TensorRT engines, exported programs), keyed by what shapes them.

A key hashes the model (its class and every state_dict tensor's bytes), the input shapes, the
precision, the device (GPU name or "cpu"), the backend and the torch version: changing any of them
builds anew instead of loading an artifact made for something else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch
from torch import nn

from movseg_ros.accel.errors import EngineCacheError

log = logging.getLogger("movseg_ros.accel")

T = TypeVar("T")


def model_hash(module: nn.Module) -> str:
    """sha256 of the module's class qualname and every state_dict entry (name, dtype, shape, bytes)."""
    h = hashlib.sha256()
    cls = type(module)
    h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def device_name(device: torch.device | str) -> str:
    """The GPU's name for a CUDA device (engines are specific to it), else 'cpu'."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


class EngineCache:
    """Artifacts under `cache_dir` as <key><suffix>, each with a <key>.json describing what it is."""

    def __init__(self, cache_dir: Path | str) -> None:
        self.cache_dir = Path(cache_dir).expanduser()

    def key(self, module: nn.Module, input_shapes: Sequence[Sequence[int]], precision: str,
            device_name: str, backend: str) -> str:
        """A 32-hex-digit key for this model, input shapes, precision, device, backend and torch version."""
        return hashlib.sha256(json.dumps(self.describe(module, input_shapes, precision, device_name, backend),
                                         sort_keys=True).encode()).hexdigest()[:32]

    @staticmethod
    def describe(module: nn.Module, input_shapes: Sequence[Sequence[int]], precision: str,
                 device_name: str, backend: str) -> dict[str, Any]:
        """The parts of a key, as written beside the artifact."""
        return {
            "model": f"{type(module).__qualname__}:{model_hash(module)}",
            "input_shapes": [list(map(int, s)) for s in input_shapes],
            "precision": precision, "device": device_name, "backend": backend, "torch": torch.__version__,
        }

    def path(self, key: str, suffix: str = ".pt2") -> Path:
        return self.cache_dir / f"{key}{suffix}"

    def get_or_build(self, key: str, build: Callable[[], T], save: Callable[[T, Path], None],
                     load: Callable[[Path], T], suffix: str = ".pt2",
                     describe: dict[str, Any] | None = None) -> tuple[T, bool]:
        """(artifact, hit): load the cached artifact, or build, save and return it.

        A file that fails to load (corrupt, truncated, written by another version) is deleted and
        rebuilt, with a warning naming it.
        """
        path = self.path(key, suffix)
        if path.is_file():
            try:
                return load(path), True
            except Exception as e:  # any failure to load means the file is unusable: rebuild it
                log.warning("engine cache: %s could not be loaded (%s: %s); deleting and rebuilding",
                            path, type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                path.unlink(missing_ok=True)
        artifact = build()
        self._save(artifact, path, save, describe)
        return artifact, False

    def _save(self, artifact: T, path: Path, save: Callable[[T, Path], None], describe: dict[str, Any] | None) -> None:
        """Write through a temporary file and rename, so a crash never leaves a half-written artifact."""
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EngineCacheError(self.cache_dir, f"cannot create the cache directory: {e.strerror or e}") from None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
        try:
            save(artifact, tmp)
            os.replace(tmp, path)
            if describe is not None:
                path.with_suffix(".json").write_text(json.dumps(describe, indent=1))
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise EngineCacheError(path, f"cannot write the artifact: {e.strerror or e}") from None
