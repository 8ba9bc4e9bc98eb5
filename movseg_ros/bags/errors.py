"""The one error the bag tools raise for bad bags and bad bag parameters."""

from __future__ import annotations

from pathlib import Path


class BagError(ValueError):
    """A bag that cannot be read or written; the message names the bag path and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem
