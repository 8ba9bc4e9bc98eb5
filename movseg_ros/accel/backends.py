"""One interface over three ways to run a heavy module: TensorRT engines, torch.compile, eager PyTorch.

`accelerate` picks the first backend of the chain tensorrt -> compile -> eager that is available
(starting at the one asked for), builds it, and falls further down the chain if building or the
first call fails. It logs one line saying which backend runs and why. Only the module handed in
is accelerated; whatever runs around it (NMS, RoI align, pre- and post-processing) stays PyTorch.
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from movseg_ros.accel import exported, tensorrt_backend
from movseg_ros.accel.cache import EngineCache, device_name
from movseg_ros.accel.config import DTYPES, AcceleratorConfig, effective_precision
from movseg_ros.accel.errors import EngineCacheError

log = logging.getLogger("movseg_ros.accel")

CHAIN = ("tensorrt", "compile", "eager")
DISABLE_COMPILE_ENV = "MOVSEG_DISABLE_COMPILE"


def compile_available(device: torch.device) -> tuple[bool, str]:
    """(True, "") when torch.compile (inductor) can build for `device`, else (False, why not).

    $MOVSEG_DISABLE_COMPILE=1 turns it off (e.g. where compile times are not wanted).
    """
    if os.environ.get(DISABLE_COMPILE_ENV, "") not in ("", "0"):
        return False, f"disabled by {DISABLE_COMPILE_ENV}={os.environ[DISABLE_COMPILE_ENV]}"
    if not hasattr(torch, "compile"):
        return False, f"torch {torch.__version__} has no torch.compile"
    try:
        dynamo = importlib.import_module("torch._dynamo")
        if not dynamo.is_dynamo_supported():
            return False, "torch.compile does not support this Python version"
    except Exception as e:
        return False, f"torch._dynamo unusable: {_first_line(e)}"
    if device.type == "cpu":
        compilers = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
        if not any(shutil.which(c) for c in compilers):
            return False, f"inductor needs a C++ compiler on the cpu (none of {', '.join(compilers)} found)"
    elif device.type == "cuda":
        try:
            from torch.utils._triton import has_triton

            if not has_triton():
                return False, "inductor needs Triton for CUDA (not installed or no usable GPU)"
        except Exception as e:
            return False, f"cannot check for Triton: {_first_line(e)}"
    return True, ""


def backend_available(backend: str, device: torch.device) -> tuple[bool, str]:
    """Whether `backend` can run on `device` here, and why not."""
    if backend == "tensorrt":
        return tensorrt_backend.tensorrt_available(device)
    if backend == "compile":
        return compile_available(device)
    if backend == "eager":
        return True, ""
    raise ValueError(f"unknown backend '{backend}' (known: {', '.join(CHAIN)})")


def select_backend(config: AcceleratorConfig, device: torch.device) -> tuple[str, str]:
    """(backend, reason): the first available backend from the requested one down the chain."""
    start = 0 if config.accelerator == "auto" else CHAIN.index(config.accelerator)
    notes = [f"requested {config.accelerator}"]
    for backend in CHAIN[start:]:
        ok, why = backend_available(backend, device)
        if ok:
            return backend, "; ".join(notes)
        notes.append(f"{backend} unavailable: {why}")
    raise AssertionError("eager is always available")  # pragma: no cover


@dataclass
class AcceleratedModule:
    """Callable like the module it wraps: inputs are moved and cast to the built device and precision,
    floating outputs come back in the first input's dtype. `backend`, `reason`, `precision`,
    `cache_key` (empty when no cache was used), `cache_hit` and `build_seconds` say how it was built."""

    fn: Callable[..., Any]
    name: str
    backend: str
    reason: str
    precision: str
    device: torch.device
    cache_key: str = ""
    cache_path: str = ""
    cache_hit: bool = False
    build_seconds: float = 0.0
    cuda_graphs: bool = False
    dtype: torch.dtype = field(init=False)

    def __post_init__(self) -> None:
        self.dtype = DTYPES[self.precision]

    def __call__(self, *inputs: torch.Tensor) -> Any:
        out_dtype = next((x.dtype for x in inputs if torch.is_floating_point(x)), torch.float32)
        xs = [_cast(x, self.device, self.dtype) for x in inputs]
        with torch.inference_mode():
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            out = self.fn(*xs)
        # CUDA-graph outputs live in memory the next replay overwrites: copy them out
        return _map_tensors(out, lambda t: _restore(t, out_dtype, self.cuda_graphs))

    def summary(self) -> dict[str, Any]:
        """What was built, as plain JSON-able values."""
        return {"name": self.name, "backend": self.backend, "reason": self.reason, "precision": self.precision,
                "device": str(self.device), "cache_key": self.cache_key, "cache_path": self.cache_path,
                "cache_hit": self.cache_hit, "build_seconds": round(self.build_seconds, 3),
                "cuda_graphs": self.cuda_graphs}


def compile_mode(device: torch.device, cuda_graphs: bool) -> str:
    """CUDA graphs ("reduce-overhead") on CUDA when allowed (shapes are static), else max-autotune without them."""
    return "reduce-overhead" if device.type == "cuda" and cuda_graphs else "max-autotune-no-cudagraphs"


def accelerate(module: nn.Module, example_inputs: Sequence[torch.Tensor], config: AcceleratorConfig = AcceleratorConfig(),
               name: str = "flow", cache: bool = False) -> AcceleratedModule:
    """Build `module` for the example inputs' shapes on the configured backend, falling back as needed.

    With `cache`, the compile and eager backends run the module's exported graph (torch.export),
    loaded from the engine cache when there (built and saved when not); TensorRT engines are always
    cached. The module is only put in eval mode (a copy is cast when the precision or device differ).
    Raises AcceleratorConfigError for a bad device and EngineCacheError for an unusable cache directory.
    """
    device = config.resolve_device()
    precision, precision_note = effective_precision(config.precision, device)
    dtype = DTYPES[precision]
    backend, reason = select_backend(config, device)
    notes = [reason] + ([precision_note] if precision_note else [])
    work = _prepared(module, device, dtype)
    inputs = [_cast(x, device, dtype) for x in example_inputs]
    shapes = [tuple(x.shape) for x in example_inputs]
    engines = EngineCache(config.cache_path())
    start = time.perf_counter()
    while True:
        built = _Built()
        try:
            fn = _BUILDERS[backend](module, work, inputs, shapes, precision, device, config,
                                    engines if cache or backend == "tensorrt" else None, built)
            break
        except EngineCacheError:  # an unusable cache directory is a setting to fix, not a backend failure
            raise
        except Exception as e:  # a backend that fails to build or to run once falls to the next one
            notes.append(f"{backend} failed: {_first_line(e)}")
            backend = CHAIN[CHAIN.index(backend) + 1]
    notes += built.notes
    result = AcceleratedModule(fn, name, backend, "; ".join(notes), precision, device, built.key, built.path, built.hit,
                               time.perf_counter() - start, backend == "compile" and compile_mode(device, config.cuda_graphs) == "reduce-overhead")
    log.info("accelerator for %s: %s (%s)", name, backend, result.reason)
    return result


@dataclass
class _Built:
    """What a builder found out on the way: the cache key/path, whether it hit, and notes for the reason."""

    key: str = ""
    path: str = ""
    hit: bool = False
    notes: list[str] = field(default_factory=list)


def _build_tensorrt(original: nn.Module, work: nn.Module, inputs: list[torch.Tensor], shapes: list[tuple[int, ...]],
                    precision: str, device: torch.device, config: AcceleratorConfig, engines: EngineCache | None,
                    built: _Built) -> Callable[..., Any]:
    """TensorRT engines from the cache, or built and cached; run once to prove they work (not run here)."""
    assert engines is not None
    parts = engines.describe(original, shapes, precision, device_name(device), "tensorrt")
    built.key = engines.key(original, shapes, precision, device_name(device), "tensorrt")
    built.path = str(engines.path(built.key, tensorrt_backend.SUFFIX))
    engine, built.hit = engines.get_or_build(
        built.key, lambda: tensorrt_backend.build_engine(work, inputs, DTYPES[precision]),
        lambda e, p: tensorrt_backend.save_engine(e, p, inputs), tensorrt_backend.load_engine,
        suffix=tensorrt_backend.SUFFIX, describe=parts)
    with torch.inference_mode():
        engine(*inputs)
    built.notes.append("engine from cache" if built.hit else "engine built and cached")
    return engine


def _source(original: nn.Module, work: nn.Module, inputs: list[torch.Tensor], shapes: list[tuple[int, ...]],
            precision: str, device: torch.device, engines: EngineCache | None, built: _Built) -> Callable[..., Any]:
    """The module to run: its exported graph through the cache when one is used, else the module itself."""
    if engines is None:
        return work
    parts = engines.describe(original, shapes, precision, device_name(device), "export")
    built.key = engines.key(original, shapes, precision, device_name(device), "export")
    built.path = str(engines.path(built.key, exported.SUFFIX))
    try:
        program, built.hit = engines.get_or_build(
            built.key, lambda: exported.export_program(work, inputs), exported.save_program, exported.load_program,
            suffix=exported.SUFFIX, describe=parts)
    except EngineCacheError:
        raise
    except Exception as e:  # a model torch.export cannot trace still runs as Python code
        built.notes.append(f"export failed, running the Python module: {_first_line(e)}")
        built.key = built.path = ""
        return work
    built.notes.append("exported graph from cache" if built.hit else "exported graph built and cached")
    return program.module()


def _build_compile(original: nn.Module, work: nn.Module, inputs: list[torch.Tensor], shapes: list[tuple[int, ...]],
                   precision: str, device: torch.device, config: AcceleratorConfig, engines: EngineCache | None,
                   built: _Built) -> Callable[..., Any]:
    """torch.compile with static shapes, warmed up once (compilation happens in that first call)."""
    source = _source(original, work, inputs, shapes, precision, device, engines, built)
    compiled = torch.compile(source, mode=compile_mode(device, config.cuda_graphs), dynamic=False)
    with torch.inference_mode():
        for _ in range(3 if device.type == "cuda" and config.cuda_graphs else 1):  # CUDA graphs record on a later call
            if device.type == "cuda" and config.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            compiled(*inputs)
    return compiled


def _build_eager(original: nn.Module, work: nn.Module, inputs: list[torch.Tensor], shapes: list[tuple[int, ...]],
                 precision: str, device: torch.device, config: AcceleratorConfig, engines: EngineCache | None,
                 built: _Built) -> Callable[..., Any]:
    return _source(original, work, inputs, shapes, precision, device, engines, built)


_BUILDERS = {"tensorrt": _build_tensorrt, "compile": _build_compile, "eager": _build_eager}


def _prepared(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The module in eval mode on `device` at `dtype`; a copy when that needs changing it."""
    params = list(module.parameters()) + list(module.buffers())
    floating = [p for p in params if torch.is_floating_point(p)]
    if all(p.device == device for p in params) and all(p.dtype == dtype for p in floating):
        return module.eval()
    return copy.deepcopy(module).to(device=device, dtype=dtype).eval()


def _cast(x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if torch.is_floating_point(x):
        return x.to(device=device, dtype=dtype)
    return x.to(device=device)


def _restore(t: torch.Tensor, dtype: torch.dtype, copy_out: bool) -> torch.Tensor:
    if torch.is_floating_point(t) and t.dtype != dtype:
        return t.to(dtype)
    return t.clone() if copy_out else t


def _map_tensors(out: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(out, torch.Tensor):
        return fn(out)
    if isinstance(out, (list, tuple)):
        return type(out)(_map_tensors(o, fn) for o in out)
    if isinstance(out, dict):
        return {k: _map_tensors(v, fn) for k, v in out.items()}
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__
