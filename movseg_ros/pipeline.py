"""Frame -> ClipBuffer -> Segmenter -> Tracker -> FrameOutput (+ 3D from the frame's depth), configured in one place.

Two kinds of discontinuity: a stream break (resolution change, stamp going back or jumping past
max_stamp_jump) starts a new stream, so tracks and ids start afresh; a gap (frames missing, from
Frame.gap_before or the stamps) keeps the stream, but a near-online segmenter ends its clips there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

from movseg_ros.clip_buffer import BufferReset, ClipBuffer
from movseg_ros.frame import Frame
from movseg_ros.geometry3d import Track3DEstimator
from movseg_ros.output import FrameOutput
from movseg_ros.segmenters.base import Segmenter, SegmenterResult
from movseg_ros.segmenters.geometric import GeometricConfig, GeometricSegmenter
from movseg_ros.segmenters.stem_seg import StemSegConfig
from movseg_ros.segmenters.two_stream import TwoStreamConfig
from movseg_ros.segmenters.visual_memory import VisualMemoryConfig
from movseg_ros.identity_tracker import IdentityTracker
from movseg_ros.stream_gaps import GapDetector, StreamGap, check_gap_factor
from movseg_ros.tracker import Tracker, TrackerConfig, track_offline

PIPELINES = ("geometric", "two_stream", "stem_seg", "visual_memory")
MIN_WORK_SIDE = 16  # below this many pixels a side (at the work size) DIS flow and RANSAC fail


class FrameSizeError(ValueError):
    """A frame the pipeline cannot use: too small a side, at the input or at the work size."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that shapes the pipeline; built from YAML or ROS parameters by `from_dict`."""

    pipeline: str = "geometric"
    buffer_length: int = 8
    max_stamp_jump: float = 10.0  # seconds; a stamp further ahead of the last resets the stream like one going back
    gap_factor: float = 1.8  # a stamp step over this many times the recent median step is a gap (frames missing); 0 = stamps never are
    geometric: GeometricConfig = field(default_factory=GeometricConfig)
    two_stream: TwoStreamConfig = field(default_factory=TwoStreamConfig)
    stem_seg: StemSegConfig = field(default_factory=StemSegConfig)
    visual_memory: VisualMemoryConfig = field(default_factory=VisualMemoryConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline '{self.pipeline}' is not one of {list(PIPELINES)}")
        if not 2 <= self.buffer_length <= 64:
            raise ValueError(f"buffer_length must be in [2, 64], got {self.buffer_length}")
        if not 0.0 < self.max_stamp_jump <= 1e6:
            raise ValueError(f"max_stamp_jump must be in (0, 1e6] seconds, got {self.max_stamp_jump}")
        check_gap_factor(self.gap_factor)
        self.tracker_config()  # this pipeline's thresholds with the tracker's must be in order

    def tracker_config(self) -> TrackerConfig:
        """The tracker's settings with the running pipeline's own alpha thresholds where it sets them (a
        learned detector's scores mean something else than the geometric pipeline's)."""
        section = {"two_stream": self.two_stream, "visual_memory": self.visual_memory}.get(self.pipeline)
        own = {name: getattr(section, name) for name in ("alpha_low", "alpha_high")
               if section is not None and getattr(section, name) >= 0}
        if not own:
            return self.tracker
        try:
            return dataclasses.replace(self.tracker, **own)
        except ValueError as e:
            raise ValueError(f"{self.pipeline}.alpha_low/alpha_high with the tracker's: {e}") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PipelineConfig":
        """Build from a nested dict ({'tracker': {'alpha_low': 0.7}, ...}); unknown keys are errors."""
        return _build(cls, d, "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, d: dict[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        if key not in fields:
            raise ValueError(f"unknown setting '{prefix}{key}' (known: {', '.join(sorted(fields))})")
        sub = fields[key].default_factory if fields[key].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            if not isinstance(value, dict):
                raise ValueError(f"setting '{prefix}{key}' must be a mapping")
            kwargs[key] = _build(sub, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _typed(value, fields[key].default, f"{prefix}{key}")
    return cls(**kwargs)


def _typed(value: Any, default: Any, name: str) -> Any:
    """`value` checked against the type of the field's default (an int is a fine float)."""
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"setting '{name}' must be {kind.__name__}, got {value!r} ({type(value).__name__})")
    return value


def work_width(config: PipelineConfig) -> int:
    """The width the configured segmenter works at (frames are shrunk to it, never enlarged)."""
    return {"geometric": config.geometric.work_width, "two_stream": config.two_stream.work_width,
            "stem_seg": config.stem_seg.work_width, "visual_memory": config.visual_memory.work_width}[config.pipeline]


def size_problem(height: int, width: int, config: PipelineConfig) -> str | None:
    """Why a `width`x`height` frame is too small for the pipeline, or None when it is usable."""
    if min(height, width) < MIN_WORK_SIDE:
        return f"{width}x{height} is smaller than {MIN_WORK_SIDE} px a side"
    work_w = min(width, work_width(config))
    work_h = round(height * work_w / width)
    if work_h < MIN_WORK_SIDE:
        return (f"{width}x{height} is {work_w}x{work_h} at the work width {work_w}, "
                f"smaller than {MIN_WORK_SIDE} px a side (aspect ratio too extreme)")
    return None


def make_segmenter(config: PipelineConfig) -> Segmenter:
    """The segmenter named by `config.pipeline`."""
    if config.pipeline == "geometric":
        return GeometricSegmenter(config.geometric)
    if config.pipeline == "two_stream":
        from movseg_ros.segmenters.two_stream import TwoStreamSegmenter  # torch only when asked for

        return TwoStreamSegmenter(config.two_stream)
    if config.pipeline == "stem_seg":
        from movseg_ros.segmenters.stem_seg import StemSegSegmenter  # torch only when asked for

        return StemSegSegmenter(config.stem_seg)
    if config.pipeline == "visual_memory":
        from movseg_ros.segmenters.visual_memory import VisualMemorySegmenter  # torch only when asked for

        return VisualMemorySegmenter(config.visual_memory)
    raise ValueError(f"pipeline '{config.pipeline}' is not available")


class Pipeline:
    """Runs one stream: push frames in order, get outputs (possibly for earlier frames) back."""

    def __init__(self, config: PipelineConfig = PipelineConfig()) -> None:
        self.config = config
        self.buffer = self._new_buffer()
        self.segmenter = make_segmenter(config)
        tracking = config.tracker_config()
        self.tracker: Tracker | IdentityTracker = (IdentityTracker(tracking) if self.segmenter.identities
                                                   else Tracker(tracking))
        self.last_reset: BufferReset | None = None  # the reset the latest frame caused, if any
        self.gaps = GapDetector(config.gap_factor)
        self.last_gap: StreamGap | None = None  # the frames missing just before the latest frame, if any
        self.geometry = Track3DEstimator()

    def _new_buffer(self) -> ClipBuffer:
        c = self.config
        return ClipBuffer(c.buffer_length, max_stamp_jump_ns=round(c.max_stamp_jump * 1e9), thumb_width=work_width(c))

    def warm_up(self, width: int, height: int) -> int:
        """Segment a short built-in stream of this size and forget it, so the work done once per image size (traced
        and frozen networks, compiled flow) happens now and not on a camera's first frame. Afterwards the pipeline
        is as after reset(): call it between streams. Never tracked, so no track id is used. Returns the frames."""
        from movseg_ros.scene import SceneConfig, make_scene  # only when asked for

        problem = size_problem(height, width, self.config)
        if problem is not None:
            raise FrameSizeError(f"warm-up at {width}x{height}: {problem}")
        count = self.segmenter.latency_frames + 2  # a near-online segmenter's first clip, or an online one's pair
        scene = make_scene(SceneConfig(width=width, height=height, frames=count))
        buffer = self._new_buffer()
        self.reset()
        try:
            for i, image in enumerate(scene.frames):
                buffer.push(Frame(image, round(i * 1e9 / 30), "warm_up", i))
                self.segmenter.process(buffer)
        finally:
            self.reset()
        return count

    @property
    def name(self) -> str:
        return self.segmenter.name

    @property
    def device(self) -> str:
        return self.segmenter.device

    @property
    def latency_frames(self) -> int:
        return self.segmenter.latency_frames

    def segment(self, frame: Frame) -> list[SegmenterResult]:
        """Buffer and segment the next frame without tracking; a broken stream resets both stages
        (after the segmenter hands over what it still held of the old stream)."""
        return [r for r, _ in self._segment(frame)]

    def _segment(self, frame: Frame) -> list[tuple[SegmenterResult, bool]]:
        """Results, each flagged True when it belongs to the old stream a reset just ended. Before a gap
        the segmenter hands over what it held (a near-online one ends its clips there; ids carry on)."""
        problem = size_problem(*frame.size, self.config)
        if problem is not None:
            raise FrameSizeError(f"frame {frame.index}: {problem}")
        reset = self.last_reset = self.buffer.push(frame)
        held: list[tuple[SegmenterResult, bool]] = []
        if reset is not None:
            held = [(r, True) for r in self.segmenter.flush()]
            self.segmenter.reset()
            self.gaps.reset()
        gap = self.last_gap = self.gaps.check(frame)
        if gap is not None:
            held += [(r, False) for r in self.segmenter.flush()]
        return held + [(r, False) for r in self.segmenter.process(self.buffer)]

    def process(self, frame: Frame) -> list[FrameOutput]:
        """Take the next frame; return the outputs that became ready (one, for online pipelines;
        for a near-online one, the frame `latency_frames` back, and at a reset the old stream's rest)."""
        results = self._segment(frame)
        held = [self._track(r) for r, old_stream in results if old_stream]
        if self.last_reset is not None:
            self.tracker.reset()
            self.geometry = Track3DEstimator()
        return held + [self._track(r) for r, old_stream in results if not old_stream]

    def finish(self) -> list[FrameOutput]:
        """End of stream, or a pause in it: the outputs a near-online segmenter still holds (none for online
        ones). Frames may follow: they start new clips, with the same ids (reset() for a new stream)."""
        return [self._track(r) for r in self.segmenter.flush()]

    def _track(self, result: SegmenterResult) -> FrameOutput:
        """The tracker's output for a result, with each visible track's 3D geometry when its frame has depth."""
        out = self.tracker.update(result)
        f = out.frame
        if f.depth is not None and f.intrinsics is not None:
            masks = {t.id: t.mask for t in out.tracks if t.mask is not None}
            found = self.geometry.update(f.stamp_ns, masks, f.depth, f.intrinsics, f.rotation)
            for t in out.tracks:
                t.geometry = found.get(t.id)
        else:
            self.geometry.turn(f.rotation)  # the camera turned even where there was no depth
        return out

    def run_offline(self, frames: Iterable[Frame]) -> list[FrameOutput]:
        """Segment a whole sequence both ways in time, then track it forward and backward.

        Seed 000's offline mode: the reverse pass gives the first frame motion evidence and
        lets the tracker pick objects up before they started moving.
        """
        frames = list(frames)
        if not frames:
            return []
        both_ways = getattr(self.segmenter, "segment_offline", None)
        if both_ways is not None:  # a segmenter that reads the whole sequence both ways itself (visual_memory)
            self.reset()
            for f in frames:
                problem = size_problem(*f.size, self.config)
                if problem is not None:
                    raise FrameSizeError(f"frame {f.index}: {problem}")
            results = both_ways(frames)
            self.reset()
            return track_offline(results, self.config.tracker_config())
        forward = [r for f in frames for r in self.segment(f)] + self.segmenter.flush()
        self.reset()
        span = frames[0].stamp_ns + frames[-1].stamp_ns  # mirrored stamps still increase
        backward = [r for f in reversed(frames)
                    for r in self.segment(Frame(f.image, span - f.stamp_ns, f.frame_id, f.index))] + self.segmenter.flush()
        self.reset()
        if len(forward) != len(frames) or len(backward) != len(frames):
            raise RuntimeError(f"offline mode needs one result a frame ({len(frames)} frames, "
                               f"{len(forward)} forward and {len(backward)} backward results)")
        backward = [SegmenterResult(f, r.detections, r.motion) for f, r in zip(frames, reversed(backward))]
        return track_offline(forward, self.config.tracker_config(), backward)

    def reset(self) -> None:
        self.geometry = Track3DEstimator()
        self.buffer.clear()
        self.gaps.reset()
        self.segmenter.reset()
        self.tracker.reset()
