"""Gaps in a stream: frames known or seen to be missing between two frames that arrived.

A gap is known when the source says so (`Frame.gap_before`, e.g. frames the node's queue dropped) or
seen from the stamps: a step over `factor` times the median of the recent steps (the camera's period)
means frames were lost on the way. A near-online segmenter must not join frames across a gap in one
clip; an online one's flow spans it anyway. A stream break (ClipBuffer's reset) is not a gap.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from movseg_ros.frame import Frame

HISTORY = 16  # recent stamp steps whose median is the stream's period (adapts to a new rate in HISTORY/2 frames)
MIN_HISTORY = 3  # steps needed before stamps can show a gap


@dataclass(frozen=True)
class StreamGap:
    """Frames missing just before a frame, and how that is known."""

    missing: int  # frames known (or estimated from the stamps) to be missing, >= 1
    source: str  # "input" (Frame.gap_before) or "stamps"
    detail: str


def check_gap_factor(factor: float) -> None:
    """A ValueError naming gap_factor unless it is 0 (off) or a step ratio in (1, 100]."""
    if factor != 0.0 and not 1.0 < factor <= 100.0:
        raise ValueError(f"gap_factor must be 0 (stamps never show a gap) or in (1, 100], got {factor}")


class GapDetector:
    """Says, frame by frame, whether frames are missing before it; `reset()` at a new stream."""

    def __init__(self, factor: float = 1.8) -> None:
        check_gap_factor(factor)
        self.factor = factor
        self._steps: deque[int] = deque(maxlen=HISTORY)
        self._last_stamp: int | None = None

    def reset(self) -> None:
        """Forget the stream: the next frame is its first, with nothing before it to miss."""
        self._steps.clear()
        self._last_stamp = None

    def check(self, frame: Frame) -> StreamGap | None:
        """The gap just before `frame` (None when it follows the previous frame directly, or is the first);
        frames must come with increasing stamps (a stream break resets first)."""
        last, self._last_stamp = self._last_stamp, frame.stamp_ns
        if last is None:
            return None
        step = frame.stamp_ns - last
        period = self._period()
        self._steps.append(step)
        by_stamps = 0 if period is None or step <= self.factor * period else max(1, round(step / period) - 1)
        if frame.gap_before >= max(by_stamps, 1):
            return StreamGap(frame.gap_before, "input", f"{frame.gap_before} frame(s) dropped before frame {frame.index}")
        if by_stamps > 0:
            return StreamGap(by_stamps, "stamps", f"stamp step {step * 1e-9:.4g} s before frame {frame.index} is "
                                                  f"{step / period:.3g} x the recent period {period * 1e-9:.4g} s")
        return None

    def _period(self) -> float | None:
        """The median recent stamp step (ns), or None while stamps cannot show a gap (off, or too few steps)."""
        if self.factor == 0.0 or len(self._steps) < MIN_HISTORY:
            return None
        return float(np.median(self._steps))
