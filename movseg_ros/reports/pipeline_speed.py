"""Frames/s and latency of pipelines on the built-in scene (`movseg_ros.scene`) at a chosen size.

Latency of a frame = compute + frame delay. Compute: how long the call that returned the frame's output
took (for an online pipeline the frame's own process() call; for a near-online one the later call that
completed its clip, or finish() at the end of the stream). Frame delay: the `latency_frames` frames a
near-online pipeline waits for, at the stream's rate (valid only while the pipeline keeps up with it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.reports.array_sequence import array_sequence
from movseg_ros.reports.davis_pipelines import pipeline_settings, run_stream, warm_up
from movseg_ros.scene import SceneConfig, make_scene


@dataclass
class SpeedRow:
    """One pipeline's throughput and latency over the scene stream."""

    pipeline: str
    settings: dict[str, Any]
    frames: int
    seconds: float  # inside process and finish, the warm-up excluded
    compute_ms: float  # mean over frames of the call that returned the frame
    compute_max_ms: float
    latency_frames: int
    rate_hz: float
    warmup_seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    @property
    def frame_delay_ms(self) -> float:
        return 1000.0 * self.latency_frames / self.rate_hz

    @property
    def latency_ms(self) -> float:
        """Mean compute plus the frame delay."""
        return self.compute_ms + self.frame_delay_ms

    @property
    def keeps_up(self) -> bool:
        """Whether it processes frames at least as fast as they arrive (else the frame delay grows)."""
        return self.fps >= self.rate_hz

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fps": self.fps, "frame_delay_ms": self.frame_delay_ms,
                "latency_ms": self.latency_ms, "keeps_up": self.keeps_up}


def scene_frames(width: int, height: int, frames: int) -> np.ndarray:
    """The built-in scene's first `frames` frames at width x height, (T, H, W, 3) uint8 RGB."""
    return np.stack(make_scene(SceneConfig(width=width, height=height, frames=frames)).frames)


def pipeline_speed(configs: dict[str, PipelineConfig], images: np.ndarray, rate_hz: float = 30.0) -> list[SpeedRow]:
    """Each pipeline over the frames as one stream at `rate_hz` (stamps), after an untimed warm-up."""
    if rate_hz <= 0:
        raise ValueError(f"frame rate must be > 0, got {rate_hz}")
    seq = array_sequence("scene", images, fps=rate_hz, dataset="images")
    rows = []
    for name, config in configs.items():
        pipeline = Pipeline(config)
        warmup = warm_up(pipeline, seq)
        run = run_stream(pipeline, seq, name)
        compute = np.array([run.call_seconds[c] for c in run.published_by]) * 1000.0
        rows.append(SpeedRow(name, pipeline_settings(config), len(seq), run.seconds, float(compute.mean()),
                             float(compute.max()), pipeline.latency_frames, rate_hz, warmup))
    return rows
