"""A process's resident memory sampled in a thread (and its CPU time on request): the memory figures of `movseg bench
node` and `bench storm`, and the node's CPU in `bench node`."""

from __future__ import annotations

import threading
import time


class RssSampler:
    """A process's resident memory (MB), sampled every `period` s in a thread."""

    def __init__(self, pid: int, period: float = 0.05) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._period = period
        self._stop = threading.Event()
        self.samples: list[tuple[float, float]] = []
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now_mb(self) -> float:
        return self._proc.memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the process has used so far, all its threads."""
        t = self._proc.cpu_times()
        return t.user + t.system

    def start(self) -> "RssSampler":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - self._t0, self.now_mb()))
            except Exception:  # noqa: BLE001 - the process ended
                return
            self._stop.wait(self._period)

    def stop(self) -> float:
        """Stop sampling; the largest RSS seen (MB)."""
        self._stop.set()
        self._thread.join(2.0)
        return max((mb for _, mb in self.samples), default=float("nan"))
