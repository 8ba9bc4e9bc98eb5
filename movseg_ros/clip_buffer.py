"""The last T frames of the stream, reset when the stream is no longer continuous."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator

from movseg_ros.frame import Frame


@dataclass(frozen=True)
class BufferReset:
    """Why the buffer dropped its history before taking a frame."""

    reason: str  # "resolution" or "stamp"
    detail: str


class ClipBuffer:
    """A sliding window of the last `length` frames.

    A frame whose resolution differs from the buffered ones, or whose stamp is not later than
    the newest buffered stamp (a bag that loops, a clock reset), empties the buffer first:
    motion between such frames means nothing.
    """

    def __init__(self, length: int) -> None:
        if length < 2:
            raise ValueError(f"ClipBuffer length must be >= 2, got {length}")
        self.length = length
        self._frames: deque[Frame] = deque(maxlen=length)

    def push(self, frame: Frame) -> BufferReset | None:
        """Append a frame; return the reset it caused, if any."""
        reset = None
        if self._frames:
            last = self._frames[-1]
            if frame.size != last.size:
                reset = BufferReset("resolution", f"{last.size[1]}x{last.size[0]} -> {frame.size[1]}x{frame.size[0]}")
            elif frame.stamp_ns <= last.stamp_ns:
                reset = BufferReset("stamp", f"stamp {frame.stamp_ns} ns is not after {last.stamp_ns} ns")
        if reset is not None:
            self._frames.clear()
        self._frames.append(frame)
        return reset

    def clear(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self._frames)

    def __getitem__(self, i: int) -> Frame:
        return self._frames[i]

    @property
    def newest(self) -> Frame:
        return self._frames[-1]

    @property
    def full(self) -> bool:
        return len(self._frames) == self.length
