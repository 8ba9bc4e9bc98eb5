"""A module accelerated lazily for each input shape it meets (static shapes, as TensorRT and CUDA graphs need).

A camera stream has one shape, so this builds once, on the first frame; a new resolution
(a stream reset) builds again, and engines already built for a shape are kept.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from movseg_ros.accel.backends import AcceleratedModule, accelerate
from movseg_ros.accel.config import AcceleratorConfig


class PerShapeAccelerated:
    """Callable like `module`; builds `accelerate(module, inputs, config)` per distinct input shapes."""

    def __init__(self, module: nn.Module, config: AcceleratorConfig, name: str, cache: bool = False) -> None:
        self.module = module
        self.config = config
        self.name = name
        self.cache = cache
        self.built: dict[tuple[tuple[int, ...], ...], AcceleratedModule] = {}

    def __call__(self, *inputs: torch.Tensor) -> Any:
        shapes = tuple(tuple(x.shape) for x in inputs)
        if shapes not in self.built:
            self.built[shapes] = accelerate(self.module, inputs, self.config, self.name, self.cache)
        return self.built[shapes](*inputs)

    @property
    def backends(self) -> list[str]:
        """The backend each shape was built on (for logs and tests)."""
        return [b.backend for b in self.built.values()]
