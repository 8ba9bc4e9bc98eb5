"""Latency and output-rate figures of a replay, as numbers and as a PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from movseg_ros.plots import pyplot, save_figure


@dataclass
class Timing:
    """Per-output latency (ms) and the time (s, from the replay's start) each output was ready."""

    latency_ms: list[float] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)

    def add(self, latency_ms: float, done_s: float) -> None:
        self.latency_ms.append(float(latency_ms))
        self.done_s.append(float(done_s))

    def summary(self) -> dict[str, float | int | None]:
        """p50/p95/p99/mean/max latency and the mean output rate; None where there is no output."""
        if not self.latency_ms:
            return {"outputs": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None,
                    "max_ms": None, "rate_hz": None}
        lat = np.asarray(self.latency_ms)
        span = max(self.done_s) - min(self.done_s)
        return {
            "outputs": int(lat.size),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "mean_ms": float(lat.mean()), "max_ms": float(lat.max()),
            "rate_hz": float((lat.size - 1) / span) if span > 0 else None,
        }

    def rate_over_time(self, bin_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Outputs per second in bins of `bin_s` seconds: (bin starts, rates)."""
        if not self.done_s:
            return np.zeros(0), np.zeros(0)
        end = max(self.done_s)
        edges = np.arange(0.0, end + bin_s, bin_s)
        if edges.size < 2:
            edges = np.array([0.0, bin_s])
        counts, _ = np.histogram(self.done_s, bins=edges)
        return edges[:-1], counts / bin_s

    def plot(self, path: Path, title: str) -> Path:
        """Three panels: latency histogram, latency per output, output rate over time."""
        plt = pyplot()

        fig, (hist, series, rate) = plt.subplots(1, 3, figsize=(15, 4))
        s = self.summary()
        if self.latency_ms:
            hist.hist(self.latency_ms, bins=40, color="tab:blue")
            for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
                hist.axvline(s[key], color="k", linestyle=style, label=f"{key[:3]} {s[key]:.1f} ms")
            hist.legend()
            series.plot(self.latency_ms, ".", markersize=3)
            starts, rates = self.rate_over_time()
            rate.step(starts, rates, where="post")
        hist.set_xlabel("latency (ms)")
        hist.set_ylabel("outputs")
        series.set_xlabel("output")
        series.set_ylabel("latency (ms)")
        rate.set_xlabel("time (s)")
        rate.set_ylabel("outputs per second")
        fig.suptitle(title)
        save_figure(fig, path)
        return path
