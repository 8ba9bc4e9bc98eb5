"""`movseg report stemseg` as text and as a figure: one table per part, one bar panel per part."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movseg_ros.reports.common import fmt
from movseg_ros.reports.davis_pipelines import WARMUP_FRAMES, davis_table
from movseg_ros.reports.stemseg import StemSegReport


def _settings_line(report: StemSegReport) -> str:
    s = report.split
    changed = "".join(f", {k}={v}" for k, v in s.synth.items())
    clips = min(len(s.seeds), max((len(p.clips) for p in report.synth), default=0))
    return (f"{clips} held-out synthetic clips of {s.frames} frames (preset '{s.preset}'{changed}, {s.size[0]}x{s.size[1]}, "
            f"trained on {s.train_clip_length}-frame clips; seeds {s.seeds.start}:{s.seeds.stop} from {s.source}); "
            f"truth: the objects that move at some point; device {report.device}")


def format_table(report: StemSegReport) -> str:
    """Held-out clip scores, DAVIS J per sequence, and speed with compute and frame-delay latency apart."""
    lines = [_settings_line(report), "each clip one stream: every frame through process(), then finish()",
             f"{'pipeline':<12}{'inst J&F':>9}{'inst J':>8}{'inst F':>8}{'bin J':>8}{'ID sw':>7}{'frames/s':>10}"]
    for p in report.synth:
        ids = "-" if p.id_switches is None else str(p.id_switches)
        lines.append(f"{p.pipeline:<12}{fmt(p.instance_jf):>9}{fmt(p.instance_j):>8}{fmt(p.instance_f):>8}"
                     f"{fmt(p.binary_j):>8}{ids:>7}{fmt(p.fps, 1):>10}")
    lines.append("inst: DAVIS-2017 unsupervised (tracks relabelled 1..K, Hungarian-matched per clip), mean over "
                 "objects; bin J: foreground J-Mean; ID sw: CLEAR id switches summed over the clips")
    if report.davis is not None:
        lines += davis_table(report.davis, report.davis_root)
    if report.speed:
        w, h = report.speed_size
        rate = report.speed[0].rate_hz
        lines.append(f"speed on the built-in scene at {w}x{h}, {report.speed[0].frames} frames as one stream at "
                     f"{rate:g} Hz, after a warm-up of {WARMUP_FRAMES}+ frames (learned pipelines eager)")
        lines.append(f"{'pipeline':<12}{'frames/s':>10}{'compute ms':>12}{'max ms':>9}{'delay fr':>10}"
                     f"{'delay ms':>10}{'latency ms':>12}")
        for r in report.speed:
            warn = "" if r.keeps_up else f"  (slower than {rate:g} Hz: the delay would grow)"
            lines.append(f"{r.pipeline:<12}{fmt(r.fps, 1):>10}{fmt(r.compute_ms, 1):>12}{fmt(r.compute_max_ms, 1):>9}"
                         f"{r.latency_frames:>10}{fmt(r.frame_delay_ms, 1):>10}{fmt(r.latency_ms, 1):>12}{warn}")
        lines.append("compute: time of the call that returned the frame (near-online: the call that completed its "
                     "clip); delay: latency_frames waited at the stream rate; latency = compute + delay")
    for note in report.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _bars(ax, labels: list[str], series: list[tuple[str, list[float | None]]], title: str, ylabel: str,
          unit_range: bool = True) -> None:
    """Grouped bars, one group per label, values written on top ('-' for a missing one)."""
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series):
        bars = ax.bar(x + (k - (len(series) - 1) / 2) * width, [v or 0.0 for v in values], width, label=name)
        for bar, v in zip(bars, values):
            ax.annotate(fmt(v, 2 if unit_range else 1), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, labels, fontsize=8)
    if unit_range:
        ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_report(report: StemSegReport, path: Path) -> Path:
    """PNG: instance J&F and binary J per pipeline on the clips; DAVIS J per pipeline; frames/s per pipeline."""
    from movseg_ros.plots import pyplot, save_figure

    plt = pyplot()
    panels = 2 + (report.davis is not None)
    fig, axes = plt.subplots(1, panels, figsize=(5.0 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    names = [p.pipeline for p in report.synth]
    _bars(axes[0], names, [("instance J&F", [p.instance_jf for p in report.synth]),
                           ("binary J", [p.binary_j for p in report.synth])],
          f"held-out synthetic ({len(report.synth[0].clips) if report.synth else 0} clips of {report.split.frames} "
          f"frames)", "score")
    if report.davis is not None:
        _bars(axes[1], [p.pipeline for p in report.davis], [("mean J", [p.mean_j for p in report.davis])],
              f"DAVIS {report.davis_root}", "J (region similarity)")
    w, h = report.speed_size
    _bars(axes[-1], [r.pipeline for r in report.speed], [("frames/s", [r.fps for r in report.speed])],
          f"speed at {w}x{h} (latency = compute + delay, ms)", "frames/s", unit_range=False)
    for bar_x, r in enumerate(report.speed):
        axes[-1].annotate(f"{r.compute_ms:.0f}+{r.frame_delay_ms:.0f} ms", (bar_x, 0), ha="center", va="bottom",
                          fontsize=7, xytext=(0, 12), textcoords="offset points")
    return save_figure(fig, Path(path))
