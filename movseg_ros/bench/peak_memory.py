"""Peak memory of a block of work: CUDA allocator peak on a GPU, resident-set growth on the CPU.

On the CPU a background thread samples RSS every few ms (torch's CPU tensors are invisible to
tracemalloc); the kernel's lifetime peak (ru_maxrss) is used as well when the block raised it.
"""

from __future__ import annotations

import resource
import threading
from dataclasses import dataclass

import psutil
import torch


@dataclass
class MemoryPeak:
    """Peak growth over the block, in MiB, and what was measured ("cuda allocated" or "cpu rss")."""

    mib: float = 0.0
    kind: str = "cpu rss"


class PeakMemory:
    """Context manager measuring the peak memory growth of its block on `device`."""

    def __init__(self, device: torch.device | str = "cpu", interval_s: float = 0.002) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.result = MemoryPeak(kind="cuda allocated" if self.device.type == "cuda" else "cpu rss")

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._proc = psutil.Process()
        self._base = self._proc.memory_info().rss
        self._max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.result.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
            return
        self._stop.set()
        self._thread.join()
        peak = max(self._peak, self._proc.memory_info().rss)
        max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if max_rss_kib > self._max_rss_kib:  # the block set a new lifetime peak: that is exact
            peak = max(peak, max_rss_kib * 1024)
        self.result.mib = max(0.0, (peak - self._base) / 2**20)
