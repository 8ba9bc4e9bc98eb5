"""The held-aside split: sequences a search never sees, kept for a final check of what it chose."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from movseg_ros.tuning.errors import TuneError


@dataclass(frozen=True)
class Split:
    """Search sequences (candidates are scored on them) and held-aside ones (the final check), both sorted."""

    search: tuple[str, ...]
    heldout: tuple[str, ...]
    rule: str  # how the held-aside ones were chosen, e.g. "20% by a shuffle with seed 0" or "named"

    def as_dict(self) -> dict[str, Any]:
        return {"search": list(self.search), "heldout": list(self.heldout), "rule": self.rule}


def split_sequences(names: Sequence[str], fraction: float = 0.2, seed: int = 0) -> Split:
    """Hold aside round(fraction × n) sequences (at least one, never all): the first ones of the sorted
    names shuffled with `seed`, so the same names, fraction and seed always give the same split."""
    if not 0.0 < fraction < 1.0:
        raise TuneError(f"--heldout-fraction must be between 0 and 1 (exclusive), got {fraction}")
    ordered = _distinct_sorted(names)
    k = min(max(round(fraction * len(ordered)), 1), len(ordered) - 1)
    shuffled = list(ordered)
    random.Random(seed).shuffle(shuffled)
    heldout = set(shuffled[:k])
    return Split(tuple(n for n in ordered if n not in heldout), tuple(sorted(heldout)),
                 f"{fraction:g} of {len(ordered)} sequences by a shuffle with seed {seed}")


def named_split(names: Sequence[str], heldout: Sequence[str]) -> Split:
    """Hold aside exactly the named sequences; each must be one of `names`, and some must be left to search."""
    ordered = _distinct_sorted(names)
    unknown = sorted(set(heldout) - set(ordered))
    if unknown:
        raise TuneError(f"--heldout {' '.join(unknown)}: no such sequence in the data (have: {', '.join(ordered)})")
    if not heldout:
        raise TuneError("--heldout needs at least one sequence name")
    search = tuple(n for n in ordered if n not in set(heldout))
    if not search:
        raise TuneError("--heldout names every sequence: none would be left to search on")
    return Split(search, tuple(sorted(set(heldout))), "named")


def _distinct_sorted(names: Sequence[str]) -> list[str]:
    ordered = sorted(set(names))
    if len(ordered) < 2:
        raise TuneError(f"a search needs at least 2 sequences (one to search on, one to hold aside), "
                        f"got {len(ordered)}: {', '.join(ordered) or 'none'}")
    return ordered
