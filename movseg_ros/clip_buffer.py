"""The last T frames of the stream, reset when the stream is no longer continuous."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator

from movseg_ros.frame import Frame

FULL_FRAMES = 2  # the newest frames kept at full size: the segmenters and the tracker's motion need two


@dataclass(frozen=True)
class BufferReset:
    """Why the buffer dropped its history before taking a frame."""

    reason: str  # "resolution", "stamp" (not after the last) or "stamp_jump" (too far after it)
    detail: str


class ClipBuffer:
    """A sliding window of the last `length` frames.

    A frame whose resolution differs from the buffered ones, whose stamp is not later than the
    newest buffered stamp (a bag that loops, a clock reset), or whose stamp jumps more than
    `max_stamp_jump_ns` ahead, empties the buffer first: motion between such frames means nothing.
    With `thumb_width`, frames older than the newest FULL_FRAMES are shrunk to that width, so the
    buffer's memory is bounded by the work size rather than the camera's (a 12000x9000 frame is 324 MB).
    """

    def __init__(self, length: int, max_stamp_jump_ns: int | None = None, thumb_width: int | None = None) -> None:
        if length < 2:
            raise ValueError(f"ClipBuffer length must be >= 2, got {length}")
        if max_stamp_jump_ns is not None and max_stamp_jump_ns <= 0:
            raise ValueError(f"max_stamp_jump_ns must be positive, got {max_stamp_jump_ns}")
        if thumb_width is not None and thumb_width < 1:
            raise ValueError(f"thumb_width must be positive, got {thumb_width}")
        self.length = length
        self.max_stamp_jump_ns = max_stamp_jump_ns
        self.thumb_width = thumb_width
        self._frames: deque[Frame] = deque(maxlen=length)

    def push(self, frame: Frame) -> BufferReset | None:
        """Append a frame; return the reset it caused, if any."""
        reset = self._break(frame)
        if reset is not None:
            self._frames.clear()
        self._frames.append(frame)
        if self.thumb_width is not None and len(self._frames) > FULL_FRAMES:
            self._frames[-FULL_FRAMES - 1] = thumbnail(self._frames[-FULL_FRAMES - 1], self.thumb_width)
        return reset

    def _break(self, frame: Frame) -> BufferReset | None:
        """The reason `frame` cannot continue the buffered stream, if it cannot."""
        if not self._frames:
            return None
        last = self._frames[-1]
        if frame.size != last.size:
            return BufferReset("resolution", f"{last.size[1]}x{last.size[0]} -> {frame.size[1]}x{frame.size[0]}")
        if frame.stamp_ns <= last.stamp_ns:
            return BufferReset("stamp", f"stamp {frame.stamp_ns} ns is not after {last.stamp_ns} ns")
        if self.max_stamp_jump_ns is not None and frame.stamp_ns - last.stamp_ns > self.max_stamp_jump_ns:
            return BufferReset("stamp_jump", f"stamp jumps {(frame.stamp_ns - last.stamp_ns) * 1e-9:.6g} s ahead "
                                             f"(limit {self.max_stamp_jump_ns * 1e-9:.6g} s)")
        return None

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


def thumbnail(frame: Frame, width: int) -> Frame:
    """`frame` shrunk to at most `width` pixels wide (aspect kept), same stamp, id and index; its depth,
    intrinsics and rotation are let go (only the newest frames' are read)."""
    if frame.size[1] <= width:
        return frame
    return Frame(frame.at_width(width), frame.stamp_ns, frame.frame_id, frame.index)
