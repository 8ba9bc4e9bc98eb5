"""Torch's intra-op thread count for a block of code, safe when threads of one process overlap such blocks.

torch.set_num_threads is process-wide. Two threads that each set a count and put back the one they saw can
leave the process at the smaller count for good (one restores what the other had set). Here the first block
to begin records the process's count and the last to end puts it back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_open = 0  # blocks running now
_outer = 0  # the count before the first of them began


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` torch threads (0: leave the setting alone)."""
    global _open, _outer
    if count <= 0:
        yield
        return
    import torch

    with _LOCK:
        if _open == 0:
            _outer = torch.get_num_threads()
        _open += 1
        torch.set_num_threads(count)
    try:
        yield
    finally:
        with _LOCK:
            _open -= 1
            if _open == 0:
                torch.set_num_threads(_outer)
