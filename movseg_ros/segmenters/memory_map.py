"""The visual memory's map for the geometric pipeline (`geometric.memory_net: visual_memory`), beside it.

The visual-memory pipeline (its own flow, MP-Net, ImageNet appearance and ConvGRU) starts on a frame in a
worker thread when the geometric pipeline does, and its map for that same frame is collected where the
geometric pipeline fuses it: the two share the two cores, and the output stays a function of the input.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np


class ConcurrentMemoryMap:
    """`start(rgb)` at a frame's arrival, `result()` later -> the memory's probability map for it (rgb's size)."""

    def __init__(self, memory) -> None:  # a VisualMemorySegmenter
        self.memory = memory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="movseg-memory")
        self._pending: Future | None = None

    def _map(self, rgb: np.ndarray) -> np.ndarray:
        prob = self.memory.online_map(rgb)
        return cv2.resize(prob.astype(np.float32), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)

    def start(self, rgb: np.ndarray) -> None:
        """The memory steps on this frame in the worker (after any frame still pending: it is one stream)."""
        self._pending = self._pool.submit(self._map, rgb)

    def result(self) -> np.ndarray:
        """The map of the frame last started (waits for it); a RuntimeError when none was."""
        if self._pending is None:
            raise RuntimeError("memory map: no frame was started")
        pending, self._pending = self._pending, None
        return pending.result()

    def reset(self) -> None:
        """A new stream: the step under way finishes first, then the memory forgets."""
        if self._pending is not None:
            try:
                self._pending.result()
            except Exception:  # noqa: BLE001 - the frame it was for is gone; only the memory's state matters now
                pass
            self._pending = None
        self.memory.reset()


def make_memory_map(weights: str, mpnet_weights: str) -> ConcurrentMemoryMap:
    """The visual-memory pipeline with these files ("" = shipped) at its shipped settings, beside the caller."""
    from movseg_ros.segmenters.visual_memory import VisualMemoryConfig, VisualMemorySegmenter

    return ConcurrentMemoryMap(VisualMemorySegmenter(VisualMemoryConfig(weights=weights, mpnet_weights=mpnet_weights)))
