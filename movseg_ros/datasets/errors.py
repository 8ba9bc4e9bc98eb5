"""The one error every dataset reader and prediction writer raises for bad input, and its bad-image kind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from movseg_ros.image_format import PATH_LIMIT
from movseg_ros.safe_text import printable

T = TypeVar("T")


class DatasetError(ValueError):
    """Unreadable or inconsistent data; the message names the file (or folder) and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{printable(path, PATH_LIMIT)}: {problem}")


class BadImageFile(DatasetError):
    """A frame, annotation or prediction file that is missing, truncated, corrupt or not an image: a
    problem of that one frame, which `movseg eval --allow-partial` leaves out instead of failing."""


def read_or_skip(read: Callable[[int], T], index: int, skipped: dict[int, BadImageFile] | None) -> T | None:
    """read(index); when it raises BadImageFile and a `skipped` record is given, the error goes there and
    the frame reads as None (left out, never silently), else the error propagates."""
    try:
        return read(index)
    except BadImageFile as e:
        if skipped is None:
            raise
        skipped[index] = e
        return None
