"""At most `max_rate` frames a second to the pipeline, by header stamps: a robot that needs the CPU elsewhere, or
lower latency than a saturated node gives, segments every k-th frame of a faster camera."""

from __future__ import annotations

SLACK = 0.9  # a frame this fraction of a period after the last one passes: camera jitter never halves the rate


class RateGate:
    """`admit(stamp_ns)`: whether a frame goes on. 0 Hz admits every frame; a stamp that goes back (a new stream or
    a looped bag) passes and starts the count again."""

    def __init__(self, max_rate: float = 0.0) -> None:
        self.max_rate = 0.0
        self._last: int | None = None
        self.set_rate(max_rate)

    def set_rate(self, max_rate: float) -> None:
        """A new limit in Hz (0: none), at once."""
        if not max_rate >= 0.0:
            raise ValueError(f"max_rate must be >= 0 Hz, got {max_rate}")
        self.max_rate = float(max_rate)

    def admit(self, stamp_ns: int) -> bool:
        if self.max_rate > 0.0 and self._last is not None and 0 <= stamp_ns - self._last < SLACK * 1e9 / self.max_rate:
            return False
        self._last = stamp_ns
        return True
