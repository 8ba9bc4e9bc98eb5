"""The error a settings search raises for input it cannot use; the message names the file or option."""

from __future__ import annotations


class TuneError(ValueError):
    """A bad search space, split, data set or trial log; `movseg tune` prints it and exits 2."""
