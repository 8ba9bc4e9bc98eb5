"""Seed 003's visual-memory pipeline: MP-Net on the DIS flow's angle field, ImageNet appearance, a ConvGRU.

Online, each frame's memory step gives a moving-object map; its regions (split where the flow says two
things move differently) go to the shared tracker. A region with MP-Net motion under it is moving; one the
memory keeps without motion (an object that stopped) is static, so it continues its track and never
starts one. Offline (`segment_offline`), the same GRU also runs backward over the whole sequence.
`memory: false` thresholds MP-Net's map alone (seed 003's MP-Net rows).
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
from movseg_ros.frame import Frame
from movseg_ros.guided_filter import guided_filter
from movseg_ros.paths import weights_file
from movseg_ros.segmenters.base import DEVICES, Detection, SegmenterResult, resize_to_width
from movseg_ros.segmenters.regions import split_by_motion, upsample_region
from movseg_ros.visual_memory.residual import heading_residual, residual_map

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "visual_memory.pt"  # in the package's models/ folder
DEFAULT_MPNET = "mpnet.pt"
DEFAULT_SALIENCY = "saliency_mobilenet_v2.pt"
OFFLINE_MODES = ("average", "head")


@dataclass(frozen=True)
class VisualMemoryConfig:
    """Settings of the visual-memory segmenter (weights, work size, flow, map thresholds, tracker alphas)."""

    weights: str = ""  # memory weights ("" = the shipped models/visual_memory.pt)
    mpnet_weights: str = ""  # MP-Net weights ("" = the shipped models/mpnet.pt)
    saliency_weights: str = ""  # saliency network, for a memory that reads its map ("" = the shipped models/saliency_mobilenet_v2.pt)
    memory: bool = True  # false: MP-Net's map alone, every region moving
    work_width: int = 256  # frames are processed at this width (aspect kept); the shipped memory trained at 256 (15 frames/s at 640x480)
    flow_preset: str = "medium"  # DIS optical flow preset: ultrafast, fast, balanced or medium
    threshold: float = 0.5  # map probability above which a pixel is the object's
    refine_radius: int = 4  # guided-filter radius (work pixels) snapping the map to image edges; 0 = off
    refine_eps: float = 0.002
    min_area: float = 0.002  # smallest region, as a fraction of the frame
    split_min_px: float = 1.5  # a region splits where its flow forms two clusters this far apart (px); 0 = never
    moving_min: float = 0.5  # a region whose MP-Net motion (90th percentile) is under this is static
    alpha_low: float = -1.0  # this pipeline's tracker alpha_low; < 0: tracker.alpha_low
    alpha_high: float = -1.0  # this pipeline's tracker alpha_high; < 0: tracker.alpha_high
    offline: str = "average"  # --offline: average (the online head run forward and backward, probabilities averaged) | head (the offline head on both directions' states)
    freeze: bool = True  # on the CPU: TorchScript-frozen networks, one graph per frame size (about 3x faster appearance)
    device: str = "cpu"  # cpu | cuda | auto (CUDA when torch sees one)

    def __post_init__(self) -> None:
        if not 64 <= self.work_width <= 1920:
            raise ValueError(f"visual_memory.work_width must be in [64, 1920], got {self.work_width}")
        if self.flow_preset not in DIS_PRESETS:
            raise ValueError(f"visual_memory.flow_preset '{self.flow_preset}' is not one of {', '.join(DIS_PRESETS)}")
        for name in ("threshold", "moving_min", "min_area"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"visual_memory.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.refine_radius <= 64:
            raise ValueError(f"visual_memory.refine_radius must be in [0, 64], got {self.refine_radius}")
        if not self.refine_eps > 0:
            raise ValueError(f"visual_memory.refine_eps must be > 0, got {self.refine_eps}")
        if self.split_min_px < 0:
            raise ValueError(f"visual_memory.split_min_px must be >= 0, got {self.split_min_px}")
        for name in ("alpha_low", "alpha_high"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"visual_memory.{name} must be <= 1 (< 0: the tracker's), got {getattr(self, name)}")
        if self.offline not in OFFLINE_MODES:
            raise ValueError(f"visual_memory.offline '{self.offline}' is not one of {', '.join(OFFLINE_MODES)}")
        if self.device not in DEVICES:
            raise ValueError(f"visual_memory.device '{self.device}' is not one of {', '.join(DEVICES)}")

    def weights_path(self) -> Path:
        return weights_file(self.weights, DEFAULT_WEIGHTS)

    def mpnet_path(self) -> Path:
        return weights_file(self.mpnet_weights, DEFAULT_MPNET)

    def saliency_path(self) -> Path:
        return weights_file(self.saliency_weights, DEFAULT_SALIENCY)


@dataclass
class _FrameMaps:
    """What one frame contributes: its work-size RGB and grey, its motion (flow) and MP-Net's map."""

    small: np.ndarray
    grey: np.ndarray
    flow: np.ndarray  # motion at this frame's pixels (H, W, 2), zeros for a stream's first frame
    motion: np.ndarray  # MP-Net's probability at stride 4
    memory_motion: np.ndarray  # what the memory reads: MP-Net's map, with the residual's when the memory has it


def snap_to_edges(prob: np.ndarray, grey: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """A map at the grey image's size snapped to its edges by the guided filter (radius 0: as it is)."""
    if radius <= 0:
        return prob
    return guided_filter(grey.astype(np.float32) / 255.0, prob.astype(np.float32), radius, eps)


class VisualMemorySegmenter:
    """Online: one flow field, one MP-Net pass, one appearance pass and one memory step a frame."""

    name = "visual_memory"
    latency_frames = 0
    identities = False

    def __init__(self, config: VisualMemoryConfig = VisualMemoryConfig()) -> None:
        from movseg_ros.visual_memory.mpnet import MotionPredictor
        from movseg_ros.visual_memory.network import load_memory
        from movseg_ros.visual_memory.predictor import OnlineMemory

        from movseg_ros.accel import AcceleratorConfig

        self.config = config
        try:
            device = AcceleratorConfig(device=config.device).resolve_device()
        except ValueError as e:
            raise ValueError(f"visual_memory.device: {e}") from None
        self.device = device.type
        frozen = config.freeze and device.type == "cpu"  # on CUDA the networks run eager
        self.mpnet = MotionPredictor(config.mpnet_path(), frozen=frozen, device=device)
        self.memory = None
        self._residual = False  # the memory reads the camera-compensated residual too (its arch says so)
        if config.memory:
            net, self.meta = load_memory(config.weights_path())
            self.memory = OnlineMemory(net, frozen=frozen, device=device, saliency=self._saliency(net))
            self._residual = net.arch.residual
            self._check_learned_from("mpnet_sha256", config.mpnet_path(), "MP-Net", "mpnet")
            log.info("visual_memory: weights %s, MP-Net %s", config.weights_path(), config.mpnet_path())
        # both MP-Net and the memory read the camera-compensated residual: one homography fit a frame serves both
        self._share_fit = self._residual and self.mpnet.model.arch.motion_input == "residual"
        self.flow = DISFlow(DISFlowConfig(preset=config.flow_preset, scale=1.0))
        self.clock: StageClock | None = None  # `movseg bench stages` sets one
        self.reset()

    def _saliency(self, net):
        """The saliency network a memory that reads its map needs (None otherwise); errors name its setting."""
        if not net.arch.saliency:
            return None
        from movseg_ros.model_files import ModelFileError
        from movseg_ros.saliency.network import load_saliency

        path = self.config.saliency_path()
        try:
            saliency, _ = load_saliency(path)
        except ModelFileError as e:
            raise ModelFileError(e.path, f"{e.problem} (the file of visual_memory.saliency_weights)") from None
        self._check_learned_from("saliency_sha256", path, "saliency network", "saliency_weights")
        return saliency

    def _check_learned_from(self, key: str, path: Path, what: str, setting: str) -> None:
        """Warn when the memory's meta records (under `key`) another file than `path` for an input network."""
        from movseg_ros.model_files import file_sha256

        learned_from = self.meta.get(key)
        if learned_from and learned_from != file_sha256(path):
            log.warning("visual_memory: the memory %s learned from another %s (sha256 %s) than %s; retrain it with "
                        "this one (movseg train visual_memory --set %s=...)",
                        self.config.weights_path(), what, learned_from[:12], path, setting)

    def flush(self) -> list[SegmenterResult]:
        """Online: nothing is ever held back."""
        return []

    def reset(self) -> None:
        self._prev_grey: np.ndarray | None = None
        if self.memory is not None:
            self.memory.reset()

    def _maps(self, image: np.ndarray, first: bool) -> _FrameMaps:
        small = resize_to_width(image, self.config.work_width)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        prev, self._prev_grey = self._prev_grey, grey
        if first or prev is None or prev.shape != grey.shape:
            flow = np.zeros(grey.shape + (2,), np.float32)
        else:
            with timed(self.clock, "flow"):
                flow = -self.flow.flow_grey(grey, prev)  # this frame's pixels: where they are heading
        shared = None  # (residual, magnitude) of this frame's one homography fit, when both read it
        if self._share_fit:
            with timed(self.clock, "residual"):
                shared = heading_residual(flow)
        with timed(self.clock, "mpnet"):
            motion = self.mpnet(flow, None if shared is None else shared[0])
        memory_motion = motion
        if self._residual:
            with timed(self.clock, "residual"):
                memory_motion = np.stack([motion, residual_map(flow, None if shared is None else shared[1])])
        return _FrameMaps(small, grey, flow, motion, memory_motion)

    def process(self, buffer: ClipBuffer) -> list[SegmenterResult]:
        frame = buffer.newest
        maps = self._maps(frame.image, len(buffer) < 2)
        if self.memory is None:
            return [SegmenterResult(frame, self._detections(frame, maps, None))]
        with timed(self.clock, "appearance"):
            x = self.memory.input(maps.small, maps.memory_motion)
        with timed(self.clock, "memory"):
            logits = self.memory.step(x)
        return [SegmenterResult(frame, self._detections(frame, maps, logits))]

    def segment_offline(self, frames: list[Frame]) -> list[SegmenterResult]:
        """A whole sequence, the memory run both ways in time (bidirectional, shared weights)."""
        self.reset()
        maps = [self._maps(f.image, k == 0) for k, f in enumerate(frames)]
        self.reset()
        if self.memory is None:
            return [SegmenterResult(f, self._detections(f, m, None)) for f, m in zip(frames, maps)]
        xs = [self.memory.input(m.small, m.memory_motion) for m in maps]
        logits = self.memory.both_ways(xs, self.config.offline)
        return [SegmenterResult(f, self._detections(f, m, lg)) for f, m, lg in zip(frames, maps, logits)]

    def probability(self, maps: _FrameMaps, logits: np.ndarray | None) -> np.ndarray:
        """The map at the work size: the memory's (sigmoid of its logits) or MP-Net's, edge-snapped."""
        h, w = maps.grey.shape
        if logits is None:
            prob = cv2.resize(maps.motion.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            prob = 1.0 / (1.0 + np.exp(-cv2.resize(logits.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)))
        return snap_to_edges(prob, maps.grey, self.config.refine_radius, self.config.refine_eps)

    def _detections(self, frame: Frame, maps: _FrameMaps, logits: np.ndarray | None) -> list[Detection]:
        """Regions of the map over `threshold`, split by their flow; moving where MP-Net sees motion."""
        cfg = self.config
        prob = self.probability(maps, logits)
        h, w = prob.shape
        motion = None  # MP-Net's map at the work size: which regions move (MP-Net alone: every one)
        if logits is not None:
            motion = cv2.resize(maps.motion.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        m = cv2.morphologyEx((prob > cfg.threshold).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        min_px = cfg.min_area * h * w
        dets = []
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] < max(1.0, min_px):
                continue
            x, y, bw, bh = (int(v) for v in stats[i, :4])
            region = lab[y:y + bh, x:x + bw] == i
            for part in split_by_motion(region, maps.flow[y:y + bh, x:x + bw], cfg.split_min_px, max(1.0, min_px)):
                score = float(np.percentile(prob[y:y + bh, x:x + bw][part], 90))
                moved = motion is None or float(np.percentile(motion[y:y + bh, x:x + bw][part], 90)) >= cfg.moving_min
                dets.append(Detection(upsample_region(part, (x, y), (h, w), frame.size), score, moved))
        return dets
