"""A light timing hook: code marks its stages with `timed(clock, name)`; with no clock it costs nothing.

`movseg bench stages` hands a StageClock to the pipeline's parts and reads per-stage latencies back,
so the stages are timed inside the real pipeline instead of in a copy of it.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Iterator

import numpy as np


class StageClock:
    """Seconds spent in each named stage, summed within a frame, one record per frame."""

    def __init__(self) -> None:
        self.frames: list[dict[str, float]] = []
        self._current: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self._current[name] = self._current.get(name, 0.0) + seconds

    def so_far(self, *names: str) -> float:
        """Seconds recorded in this (unfinished) frame for these stages together."""
        return sum(self._current.get(n, 0.0) for n in names)

    def end_frame(self) -> dict[str, float]:
        """Close this frame's record (stages that did not run this frame count as 0 s) and return it."""
        record, self._current = self._current, {}
        self.frames.append(record)
        return record

    def discard(self) -> None:
        """Forget everything recorded so far (e.g. the warm-up frames)."""
        self.frames, self._current = [], {}

    def stats(self, order: list[str] | None = None) -> dict[str, dict[str, float]]:
        """Per stage: p50, p99 and mean in ms over the recorded frames, and frames/s of its mean."""
        names = order or sorted({n for f in self.frames for n in f})
        out = {}
        for name in names:
            ms = np.array([f.get(name, 0.0) for f in self.frames]) * 1000.0
            if not len(ms):
                continue
            mean = float(ms.mean())
            out[name] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                         "mean_ms": mean, "fps": 1000.0 / mean if mean > 0 else float("inf")}
        return out


def timed(clock: StageClock | None, name: str) -> AbstractContextManager[None]:
    """Time the block as stage `name` on `clock`; a no-op when clock is None."""
    return nullcontext() if clock is None else clock.stage(name)
