"""What every report shares: its error type, seed ranges given on the command line, and the torch device."""

from __future__ import annotations

import numpy as np
import torch


class ReportError(ValueError):
    """Input the report cannot use (bad seed range, held-out seeds that were trained on); names the file/setting."""


def parse_seed_range(text: str, option: str = "--heldout-seeds", names: tuple[str, str] = ("LO", "HI")) -> range:
    """'LO:HI' -> range(LO, HI) with 0 <= LO < HI; ReportError (a ValueError) naming the option otherwise.

    `names` are the two bounds as the option's help spells them (e.g. START, STOP), for the message.
    """
    lo_name, hi_name = names
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise ReportError(f"{option} '{text}' is not {lo_name}:{hi_name} (two integers)") from None
    if not 0 <= lo < hi:
        raise ReportError(f"{option} '{text}' must have 0 <= {lo_name} < {hi_name}")
    return range(lo, hi)


def resolve_device(device: str) -> torch.device:
    """'auto' is CUDA when torch sees one; 'cuda' without one is a ReportError."""
    if device not in ("cpu", "cuda", "auto"):
        raise ReportError(f"--device '{device}' is not one of cpu, cuda, auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ReportError("--device cuda asked for but torch sees no CUDA device")
    return torch.device(device)


def fmt(value: float | None, digits: int = 3) -> str:
    """A table cell: '-' for a missing or non-finite figure."""
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"
