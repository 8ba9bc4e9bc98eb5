"""Pieces both replay modes share: input conversion, truth loading, the summary and its plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from movseg_ros.bags.reader import BagInfo, bag_info, read_label_maps, select_image_topic
from movseg_ros.replay.options import ReplayOptions
from movseg_ros.replay.timing import Timing
from movseg_ros.plots import pyplot, save_figure


def as_rgb(image: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded bag image as HxWx3 uint8 RGB (mono is replicated, alpha dropped, 16-bit scaled)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    return np.ascontiguousarray(image)


def topic_count(info: BagInfo, topic: str) -> int:
    """Messages on `topic` in the bag."""
    return next(t.count for t in info.topics if t.name == topic)


def topic_rate(info: BagInfo, topic: str) -> float | None:
    """Mean message rate of `topic` over the bag's duration (None for a single message)."""
    count = topic_count(info, topic)
    return (count - 1) / (info.duration_ns / 1e9) if count > 1 and info.duration_ns > 0 else None


def load_truth(bag: Path, info: BagInfo, topic: str) -> dict[int, np.ndarray] | None:
    """Ground-truth label maps by stamp when the bag has `topic`, else None."""
    if not any(t.name == topic for t in info.topics):
        return None
    return read_label_maps(bag, topic)


def open_replay(options: ReplayOptions) -> tuple[BagInfo, str, int, dict[int, np.ndarray] | None]:
    """The bag's description, its camera topic, how many of its images to replay, and its truth (or None)."""
    info = bag_info(options.bag)
    topic = select_image_topic(info, options.image_topic)
    in_topic = topic_count(info, topic)
    total = in_topic if options.max_frames is None else min(in_topic, options.max_frames)
    return info, topic, total, load_truth(options.bag, info, options.truth_topic)


def write_summary(summary: dict[str, Any], timing: Timing, out: Path, title: str) -> dict[str, Any]:
    """summary.json plus the timing plot (and the J-over-time plot when there are metrics)."""
    out.mkdir(parents=True, exist_ok=True)
    files = summary.setdefault("files", {})
    files["timing_plot"] = str(timing.plot(out / "timing.png", title))
    metrics = summary.get("metrics")
    if metrics and metrics.get("binary"):
        files["metrics_plot"] = str(plot_metrics(metrics, out / "metrics.png", title))
    files["summary"] = str(out / "summary.json")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_jsonable))
    return summary


def plot_metrics(metrics: dict[str, Any], path: Path, title: str) -> Path:
    """J and F of every scored frame over time."""
    plt = pyplot()

    binary = metrics["binary"]
    fig, ax = plt.subplots(figsize=(10, 4))
    for key, colour in (("J", "tab:blue"), ("F", "tab:orange")):
        values = binary[key]["per_frame"]
        ax.plot(values, color=colour, label=f"{key} (mean {binary[key]['mean']:.3f})")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("scored frame")
    ax.set_ylabel("score")
    ax.set_title(title + (" (partial)" if metrics.get("partial") else ""))
    ax.legend()
    save_figure(fig, path)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
