"""The one error the bag tools raise for bad bags and bad bag parameters."""

from __future__ import annotations

from pathlib import Path

from movseg_ros.safe_text import printable

MESSAGE_LIMIT = 600  # characters of one bag error


class BagError(ValueError):
    """A bag that cannot be read or written; the message names the bag path and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        # topic names, encodings and paths come from the bag: escaped and cut, safe to print or log
        super().__init__(printable(f"{path}: {problem}", MESSAGE_LIMIT))
        self.path = Path(path)
        self.problem = problem
