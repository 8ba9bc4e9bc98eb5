"""The node's input queue keeps the newest frames and counts what it drops."""

from __future__ import annotations

import threading
import time

import pytest

from movseg_ros.ros.drop_queue import DropOldestQueue


def test_full_queue_drops_the_oldest() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(2)
    assert [q.put(i) for i in range(5)] == [False, False, True, True, True]
    assert q.dropped == 3 and len(q) == 2
    assert [q.get(0), q.get(0), q.get(0)] == [3, 4, None]


def test_close_wakes_a_waiting_consumer() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(1)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
    t.start()
    time.sleep(0.05)
    start = time.monotonic()
    q.close()
    t.join(2)
    assert got == [None] and time.monotonic() - start < 1 and q.closed


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DropOldestQueue(0)
