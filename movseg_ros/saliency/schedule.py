"""Saliency off the frame path: the network runs on every k-th frame in a worker thread, and its map is
carried along the optical flow to the frames in between.

A map asked for at frame s is taken at frame s + k (the worker had k frame periods for it), moved by the
flows of frames s+1..s+k, and then carried frame by frame until the next one arrives. Waiting at s + k
(rather than taking whatever is done) keeps the output a function of the input alone: eval, replay and
the node give the same masks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

Warp = tuple[np.ndarray, np.ndarray]  # (map_x, map_y): each pixel's place in the previous frame


def carry(image: np.ndarray, warp: Warp) -> np.ndarray:
    """`image` of the previous frame moved onto this one along the flow (0 where it came from outside)."""
    return cv2.remap(image, warp[0], warp[1], cv2.INTER_LINEAR, borderValue=0)


class ScheduledSaliency:
    """`step(rgb, warp)` each frame -> the saliency map for that frame (None until the first map arrives)."""

    def __init__(self, model: Callable[[np.ndarray], np.ndarray], every: int = 3) -> None:
        if every < 1:
            raise ValueError(f"saliency every must be >= 1, got {every}")
        self.model, self.every = model, every
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="movseg-saliency")
        self.reset()

    def reset(self) -> None:
        self._count = 0
        self._map: np.ndarray | None = None
        self._pending: tuple[Future, list[Warp]] | None = None

    def step(self, rgb: np.ndarray, warp: Warp | None) -> np.ndarray | None:
        """This frame's map; `warp` moves the previous frame onto this one (None: no flow, e.g. the first frame)."""
        if warp is not None:
            if self._map is not None:
                self._map = carry(self._map, warp)
            if self._pending is not None:
                self._pending[1].append(warp)
        due = self._count % self.every == 0
        if due and self._pending is not None:
            future, warps = self._pending
            fresh = future.result()
            for w in warps:
                fresh = carry(fresh, w)
            self._map = fresh
            self._pending = None
        if due:
            self._pending = (self._pool.submit(self.model, rgb), [])
        self._count += 1
        return self._map

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
