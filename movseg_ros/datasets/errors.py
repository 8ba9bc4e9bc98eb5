"""The one error every dataset reader and prediction writer raises for bad input."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """Unreadable or inconsistent data; the message names the file (or folder) and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
