"""A bounded hand-off queue that drops the oldest item when full: a live stream wants the newest frame."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """Thread-safe FIFO of at most `maxsize` items; `put` on a full queue evicts the oldest.

    `close()` wakes a waiting `get`, which then returns None: the worker's signal to stop.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.dropped = 0
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T) -> bool:
        """Add an item; return True if an older item was dropped to make room."""
        with self._cond:
            dropped = len(self._items) >= self.maxsize
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest item, waiting up to `timeout` s; None on timeout or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if self._closed or not self._items:
                return None
            return self._items.popleft()

    def close(self) -> None:
        """Stop handing out items and wake every waiter."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
