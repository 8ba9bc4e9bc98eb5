"""What the node counts and times, and its /diagnostics status built from that.

Counters are cumulative since start so that, once the queue is empty,
received == processed + dropped + bad + failed + skipped (paused by ~/enable, or over max_rate). Rates and latencies
cover a recent window; the camera latency (clock minus header stamp) only from stamps that are plausible, the rest
counted. The output latency is per frame, from its arrival to the publication of its own output: for a near-online
pipeline it includes the frames it waited for (or the silence before a flush).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

WINDOW_S = 5.0  # rates and latency percentiles cover this many recent seconds


class RollingWindow:
    """(time, value) samples younger than `span` seconds."""

    def __init__(self, span: float = WINDOW_S) -> None:
        self.span = span
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, value: float = 0.0) -> None:
        self._samples.append((t, value))
        self._prune(t)

    def _prune(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self.span:
            self._samples.popleft()

    def rate(self, now: float) -> float:
        """Events per second over the window (0 with fewer than two events)."""
        self._prune(now)
        if len(self._samples) < 2:
            return 0.0
        dt = self._samples[-1][0] - self._samples[0][0]
        return (len(self._samples) - 1) / dt if dt > 0 else 0.0

    def percentiles(self, now: float, qs: tuple[float, ...]) -> list[float] | None:
        """Percentiles of the values in the window, None when empty."""
        self._prune(now)
        if not self._samples:
            return None
        values = np.fromiter((v for _, v in self._samples), np.float64)
        return [float(x) for x in np.percentile(values, qs)]


class NodeStats:
    """Thread-safe counters and windows; the subscriber callback and the worker both write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.failed = 0
        self.skipped = 0
        self.published = 0
        self.implausible_stamps = 0
        self.gaps = 0
        self.flushes = 0
        self.bad: Counter[str] = Counter()
        self.resets: Counter[str] = Counter()
        self.input_problems: Counter[str] = Counter()  # frames without depth or rotation, by reason
        self._inputs = RollingWindow()
        self._outputs = RollingWindow()
        self._latency = RollingWindow()
        self._camera_latency = RollingWindow()
        self._last_trouble = (0, 0)

    def on_received(self, now: float) -> None:
        with self._lock:
            self.received += 1
            self._inputs.add(now)

    def on_bad(self, kind: str) -> None:
        with self._lock:
            self.bad[kind] += 1

    def on_processed(self, resets: list[str], gap: bool = False) -> None:
        """A frame went through the pipeline; it broke the stream (`resets`) or followed missing frames (`gap`)."""
        with self._lock:
            self.processed += 1
            self.resets.update(resets)
            self.gaps += int(gap)

    def on_flush(self) -> None:
        """Held frames were handed over because no frame came for a while."""
        with self._lock:
            self.flushes += 1

    def on_input_problem(self, reason: str) -> None:
        """A frame processed without something the robot should have given (depth, rotation)."""
        with self._lock:
            self.input_problems[reason] += 1

    def on_skipped(self) -> None:
        """A frame that arrived while processing was paused (~/enable false)."""
        with self._lock:
            self.skipped += 1

    def on_failed(self) -> None:
        with self._lock:
            self.failed += 1

    def on_published(self, now: float, latency_s: float, camera_latency_s: float | None) -> None:
        """An output went out `latency_s` after its own frame arrived; `camera_latency_s` is None when its stamp
        was implausible (far ahead or behind)."""
        with self._lock:
            self.published += 1
            self._outputs.add(now)
            self._latency.add(now, latency_s * 1e3)
            if camera_latency_s is None:
                self.implausible_stamps += 1
            else:
                self._camera_latency.add(now, camera_latency_s * 1e3)

    def status(self, name: str, pipeline: str, device: str, dropped: int, queue_depth: int,
               state: str = "active", latency_frames: int = 0) -> DiagnosticStatus:
        """One DiagnosticStatus: WARN while frames are dropped, bad or failing, else OK."""
        now = time.monotonic()
        with self._lock:
            lat = self._latency.percentiles(now, (50, 95))
            cam = self._camera_latency.percentiles(now, (50, 95))
            bad_total = sum(self.bad.values())
            values = {
                "pipeline": pipeline,
                "lifecycle state": state,
                "device": device,
                "input rate (Hz)": f"{self._inputs.rate(now):.2f}",
                "output rate (Hz)": f"{self._outputs.rate(now):.2f}",
                "output latency (frames)": str(latency_frames),
                "output latency p50 (ms)": _ms(lat, 0),
                "output latency p95 (ms)": _ms(lat, 1),
                "camera latency p50 (ms)": _ms(cam, 0),
                "camera latency p95 (ms)": _ms(cam, 1),
                "frames received": str(self.received),
                "frames processed": str(self.processed),
                "frames dropped": str(dropped),
                "frames bad": str(bad_total),
                "frames failed": str(self.failed),
                "frames skipped": str(self.skipped),
                "outputs published": str(self.published),
                "queue depth": str(queue_depth),
                "stream resets": str(sum(self.resets.values())),
                "stream gaps": str(self.gaps),
                "flushes": str(self.flushes),
                "stamps implausible for latency": str(self.implausible_stamps),
            }
            values.update({f"bad input ({k})": str(n) for k, n in sorted(self.bad.items())})
            values.update({f"resets ({k})": str(n) for k, n in sorted(self.resets.items())})
            values.update({f"robot input ({k})": str(n) for k, n in sorted(self.input_problems.items())})
            trouble = (dropped, bad_total + self.failed)
            level, message = DiagnosticStatus.OK, "ok"
            if trouble[1] > self._last_trouble[1]:
                level, message = DiagnosticStatus.WARN, "bad input or pipeline errors"
            elif trouble[0] > self._last_trouble[0]:
                level, message = DiagnosticStatus.WARN, "dropping frames: the pipeline is slower than the input"
            self._last_trouble = trouble
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=f"movseg/{device}",
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])


def _ms(pcts: list[float] | None, i: int) -> str:
    return "n/a" if pcts is None else f"{pcts[i]:.1f}"
