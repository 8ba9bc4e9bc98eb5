"""The learned online pipeline of seed 000: the two-stream Mask R-CNN on RGB and DIS flow.

Each frame is resized to `work_width`; the flow image is the motion at this frame's pixels (minus the
flow from this frame back to the previous one). Moving detections come from the fused heads, static
ones from the objectness branch; a static detection that overlaps a moving one is dropped. Both go to
the shared tracker, where only moving detections start tracks and static ones continue them.
Weights of one stream (`movseg train motion` or `appearance`) run that stream alone, every detection
taken as moving: seed 000's motion-only and appearance-only ablation rows as pipelines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from movseg_ros.bench.stage_clock import StageClock, timed
from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.flow import DIS_PRESETS, DISFlow, DISFlowConfig
from movseg_ros.paths import weights_file
from movseg_ros.segmenters.base import Detection, SegmenterResult, check_runtime_settings

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "motion_mobilenet_v2.pt"  # in the package's models/ folder: the motion stream on camera-compensated
#   flow, chosen over the joint two_stream_mobilenet_v2.pt on held-aside train J (0.478 against 0.409) and speed


@dataclass(frozen=True)
class TwoStreamConfig:
    """Settings of the two-stream segmenter (weights, work resolution, flow, thresholds, accelerator)."""

    weights: str = ""  # seed-000 weights file: joint, motion or appearance ("" = the shipped models/motion_mobilenet_v2.pt)
    work_width: int = 320  # frames are processed at this width (aspect kept)
    flow_preset: str = "medium"  # DIS optical flow preset: ultrafast, fast, balanced or medium
    min_score: float = 0.1194  # detections scoring below this are not passed on (movseg tune on DAVIS-2016 train)
    max_detections: int = 20  # most detections a frame, per branch
    proposals: int = 100  # region proposals a frame the box head scores, per branch (the RPN's post-NMS top n); 300: J +0.006 on held-aside train, 1.27x the time
    static_branch: bool = True  # objectness predictions continue tracks of objects that stopped
    static_overlap: float = 0.5  # a static detection with this fraction of its mask under a moving one is dropped
    alpha_low: float = 0.4886  # this pipeline's tracker alpha_low (its scores are its own); < 0: tracker.alpha_low
    alpha_high: float = 0.8797  # this pipeline's tracker alpha_high; < 0: tracker.alpha_high
    device: str = "cpu"  # cpu | cuda | auto
    accelerator: str = "auto"  # backbones: auto (TensorRT on CUDA, else torch.compile, else eager) | tensorrt | compile | eager
    precision: str = "fp32"  # backbones: fp32 | fp16 | bf16 (fp16 on CUDA only; elsewhere fp32, logged)

    def __post_init__(self) -> None:
        if not 64 <= self.work_width <= 1920:
            raise ValueError(f"two_stream.work_width must be in [64, 1920], got {self.work_width}")
        if self.flow_preset not in DIS_PRESETS:
            raise ValueError(f"two_stream.flow_preset '{self.flow_preset}' is not one of {', '.join(DIS_PRESETS)}")
        for name in ("min_score", "static_overlap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"two_stream.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("alpha_low", "alpha_high"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"two_stream.{name} must be <= 1 (< 0: the tracker's), got {getattr(self, name)}")
        if not 1 <= self.max_detections <= 100:
            raise ValueError(f"two_stream.max_detections must be in [1, 100], got {self.max_detections}")
        if not 10 <= self.proposals <= 2000:
            raise ValueError(f"two_stream.proposals must be in [10, 2000], got {self.proposals}")
        check_runtime_settings("two_stream", self.device, self.accelerator, self.precision)

    def weights_path(self) -> Path:
        return weights_file(self.weights, DEFAULT_WEIGHTS)


class TwoStreamSegmenter:
    """Online: each new frame is segmented with the flow from the previous one."""

    name = "two_stream"
    latency_frames = 0
    identities = False

    def __init__(self, config: TwoStreamConfig = TwoStreamConfig()) -> None:
        from movseg_ros.accel import AcceleratorConfig, PerShapeAccelerated
        from movseg_ros.two_stream.arch import DetectorArch
        from movseg_ros.two_stream.models import TwoStreamFeatures
        from movseg_ros.two_stream.weights import load_model, weights_kind

        self.config = config
        accel = AcceleratorConfig(accelerator=config.accelerator, precision=config.precision, device=config.device)
        self._device = accel.resolve_device()
        self.device = self._device.type
        self.kind = weights_kind(config.weights_path())  # two_stream, or one stream alone: motion | appearance
        if self.kind == "two_stream":
            self.model, self.meta = load_model(config.weights_path(), "two_stream", static_branch=config.static_branch,
                                               detections_per_img=config.max_detections)
            self.features = PerShapeAccelerated(TwoStreamFeatures(self.model), accel, "two_stream")  # built on frame 2
            self.model.use_features(self.features)
            branches = [(self.model.rpn, self.model.roi_heads), (self.model.static_rpn, self.model.static_roi_heads)]
        else:
            self.model, self.meta = load_model(config.weights_path(), self.kind)
            self.model.roi_heads.detections_per_img = config.max_detections
            self.features = None  # one stream runs eager
            branches = [(self.model.rpn, self.model.roi_heads)]
        below = float(np.nextafter(np.float32(config.min_score), np.float32(-1.0)))  # the heads keep scores > it
        for rpn, heads in branches:
            rpn._post_nms_top_n["testing"] = config.proposals
            heads.score_thresh = below  # boxes under min_score are dropped below anyway: no masks are made for them
        self.motion_input = DetectorArch.from_dict(self.meta.get("arch_settings") or {}).motion_input
        self.model.to(self._device)
        self.flow = DISFlow(DISFlowConfig(preset=config.flow_preset, scale=1.0))
        self.clock: StageClock | None = None  # `movseg bench stages` sets one
        log.info("two_stream: %s weights %s (%s, trained %s steps)", self.kind, config.weights_path(),
                 self.meta.get("arch_settings", {}).get("backbone"), self.meta.get("iterations"))
        self.reset()

    def flush(self) -> list[SegmenterResult]:
        """Online: nothing is ever held back."""
        return []

    def reset(self) -> None:
        self._prev_grey: np.ndarray | None = None

    def process(self, buffer: ClipBuffer) -> list[SegmenterResult]:
        import torch

        from movseg_ros.two_stream.inputs import flow_tensor, model_input, motion_flow, rgb_tensor

        frame = buffer.newest
        small = frame.at_width(self.config.work_width)
        h, w = small.shape[:2]
        h0, w0 = frame.size
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        prev, self._prev_grey = self._prev_grey, grey
        if prev is None or len(buffer) < 2:
            return [SegmenterResult(frame)]
        with timed(self.clock, "flow"):
            motion = -self.flow.flow_grey(grey, prev)  # this frame's pixels: where they are heading
            if self.kind != "appearance":
                motion = motion_flow(motion, self.motion_input)
        x = model_input(self.kind, rgb_tensor(small), flow_tensor(motion)).to(self._device)
        transform = self.model.transform
        transform.min_size, transform.max_size = (min(h, w),), max(h, w)  # the work size, not resized again
        with timed(self.clock, "network"), torch.inference_mode():
            out = self.model([x])[0]
        if self.kind != "two_stream":  # one stream alone: all its detections are the moving ones
            out = {"moving": out, "static": {"scores": out["scores"][:0], "masks": out["masks"][:0]}}
        with timed(self.clock, "masks"):
            moving = self._detections(out["moving"], (h0, w0), True)
            static = self._detections(out["static"], (h0, w0), False)
        return [SegmenterResult(frame, moving + drop_covered(static, moving, self.config.static_overlap))]

    def _detections(self, out: dict, size: tuple[int, int], moving: bool) -> list[Detection]:
        """Detections over min_score, masks at the frame's full resolution."""
        keep = out["scores"] >= self.config.min_score
        scores = out["scores"][keep].cpu().numpy()
        masks = out["masks"][keep][:, 0].float().cpu().numpy()
        result = []
        for score, prob in zip(scores, masks):
            full = cv2.resize(prob, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) > 0.5
            if full.any():
                result.append(Detection(full, float(score), moving))
        return result


def drop_covered(static: list[Detection], moving: list[Detection], overlap: float) -> list[Detection]:
    """Static detections without more than `overlap` of their mask under moving ones (seed 000 §4: a static
    prediction that overlaps a moving one is removed)."""
    if not moving or not static:
        return static
    covered = np.logical_or.reduce([d.mask for d in moving])
    return [d for d in static if np.count_nonzero(d.mask & covered) <= overlap * np.count_nonzero(d.mask)]
