"""Errors of the accelerator layer: bad settings and unusable cache files, each naming the thing at fault."""

from __future__ import annotations

from pathlib import Path


class AcceleratorConfigError(ValueError):
    """An accelerator setting that is out of range; the message names the field and the allowed values."""


class EngineCacheError(OSError):
    """A cache directory or artifact that cannot be created or written; the message includes the path."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"engine cache {self.path}: {problem}")
