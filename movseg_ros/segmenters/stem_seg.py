"""The near-online pipeline of seed 004: spatio-temporal embeddings on overlapping clips, stitched.

Frames are resized to `work_width` and kept until their clip is complete. Each clip of T frames
goes through the network once (with weights that read motion, beside each frame's camera-compensated DIS flow,
stem_seg/motion.py; seed 004 has no optical flow); clustering the embeddings gives the clip's
instance tubes; the stitcher links them to the previous clip's over the T_c shared frames and
publishes each frame when the frame T - T_c after it arrives (frames 0..T_c-1 wait for the first
clip). Detections carry the stitched ids, so the IdentityTracker reports them unchanged.
`flush()` ends the clip sequence (end of stream, a gap in it, or a pause): the held frames are
segmented and handed over, and the next frame starts a new sequence whose first clip is linked to the
last frame before it, so objects keep their ids; `reset()` (a new stream) forgets them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from movseg_ros.bench.stage_clock import StageClock, timed
from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.frame import Frame
from movseg_ros.paths import weights_file
from movseg_ros.segmenters.base import Detection, SegmenterResult, check_runtime_settings, resize_to_width, width_size

if TYPE_CHECKING:
    from movseg_ros.stem_seg.clustering import ClusterConfig

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "stemseg_mobilenet_v2.pt"  # in the package's models/ folder


@dataclass(frozen=True)
class StemSegConfig:
    """Settings of the STEm-Seg segmenter (weights, clips, clustering, accelerator)."""

    weights: str = ""  # STEm-Seg weights file ("" = the shipped models/stemseg_mobilenet_v2.pt)
    clip_length: int = 8  # T, frames per clip
    clip_overlap: int = 0  # T_c, frames shared by consecutive clips; output latency is T - T_c frames (0: clips linked by adjacent frames; held-aside J as with 3, network once every 8 frames rather than 5)
    work_width: int = 256  # frames are processed at this width (aspect kept; the shipped weights trained at 256x144)
    seed_threshold: float = 0.55  # clustering stops when the heat-map peak is below this (no later tube could pass min_tube_seediness when equal to it)
    mask_threshold: float = 0.5  # a pixel joins a tube when its Gaussian probability is above this
    max_instances: int = 20  # most tubes a clip
    min_pixels: int = 8  # tubes smaller than this (pixels at the network's output resolution) are dropped
    min_tube_seediness: float = 0.55  # tubes whose mean heat-map value is below this are dropped (0 = off; both 0.55 chosen on DAVIS-2016 train's held-aside six and synthetic streams)
    smooth_masks: bool = True  # masks from each tube's probability upsampled bilinearly to the work size (edges between output cells), then nearest; false: the output grid's labels, nearest
    link_min_iou: float = 0.1  # tubes of consecutive clips below this IoU over the shared frames are not linked
    device: str = "cpu"  # cpu | cuda | auto
    accelerator: str = "auto"  # network: auto (TensorRT on CUDA, else torch.compile, else eager) | tensorrt | compile | eager
    precision: str = "fp32"  # network: fp32 | fp16 | bf16 (fp16 on CUDA only; elsewhere fp32, logged)

    def __post_init__(self) -> None:
        if not 2 <= self.clip_length <= 32:
            raise ValueError(f"stem_seg.clip_length must be in [2, 32], got {self.clip_length}")
        if not 0 <= self.clip_overlap < self.clip_length:
            raise ValueError(f"stem_seg.clip_overlap must be in [0, clip_length={self.clip_length}), got {self.clip_overlap}")
        if not 64 <= self.work_width <= 1920:
            raise ValueError(f"stem_seg.work_width must be in [64, 1920], got {self.work_width}")
        for name in ("seed_threshold", "min_tube_seediness", "link_min_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"stem_seg.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f"stem_seg.mask_threshold must be in (0, 1), got {self.mask_threshold}")
        if self.link_min_iou == 0.0:
            raise ValueError("stem_seg.link_min_iou must be > 0")
        if not 1 <= self.max_instances <= 100:
            raise ValueError(f"stem_seg.max_instances must be in [1, 100], got {self.max_instances}")
        if self.min_pixels < 1:
            raise ValueError(f"stem_seg.min_pixels must be >= 1, got {self.min_pixels}")
        check_runtime_settings("stem_seg", self.device, self.accelerator, self.precision)

    def weights_path(self) -> Path:
        return weights_file(self.weights, DEFAULT_WEIGHTS)

    def cluster_config(self) -> "ClusterConfig":
        """The clustering settings these settings name (stem_seg/clustering.py's ClusterConfig)."""
        from movseg_ros.stem_seg.clustering import ClusterConfig

        return ClusterConfig(seed_threshold=self.seed_threshold, mask_threshold=self.mask_threshold,
                             max_instances=self.max_instances, min_pixels=self.min_pixels,
                             min_tube_seediness=self.min_tube_seediness)


class StemSegSegmenter:
    """Near-online: each frame's result comes `latency_frames` = T - T_c frames after it."""

    name = "stem_seg"
    identities = True

    def __init__(self, config: StemSegConfig = StemSegConfig()) -> None:
        from movseg_ros.accel import AcceleratorConfig, PerShapeAccelerated
        from movseg_ros.stem_seg.motion import motion_for
        from movseg_ros.stem_seg.network import StemSegOutputs, load_stemseg
        from movseg_ros.stem_seg.stitching import ClipSchedule, Stitcher

        self.config = config
        accel = AcceleratorConfig(accelerator=config.accelerator, precision=config.precision, device=config.device)
        self._device = accel.resolve_device()
        self.device = self._device.type
        self.model, self.meta = load_stemseg(config.weights_path())
        self.model.to(self._device)
        self.network = PerShapeAccelerated(StemSegOutputs(self.model), accel, "stem_seg")  # built on the first clip
        self.motion = motion_for(self.model.arch)  # residual motion beside the RGB, for weights that read it
        self.schedule = ClipSchedule(config.clip_length, config.clip_overlap)
        self.stitcher = Stitcher(self.schedule, config.link_min_iou)
        self.clusters = config.cluster_config()
        self.latency_frames = self.schedule.latency_frames
        self.clock: StageClock | None = None  # `movseg bench stages` sets one
        log.info("stem_seg: weights %s (trained %s steps), clips of %d frames overlapping by %d: latency %d frames",
                 config.weights_path(), self.meta.get("iterations"), config.clip_length, config.clip_overlap,
                 self.latency_frames)
        self.reset()

    def reset(self) -> None:
        """A new stream: forget the held frames and the ids' links to what came before."""
        self.stitcher.reset()
        self._new_clip_sequence()

    def _new_clip_sequence(self) -> None:
        """Count frames from 0 again, as the first frame of a clip schedule."""
        self._seen = 0  # frames received in this clip sequence
        self._frames: dict[int, Frame] = {}  # frames not yet published, by index in the clip sequence
        self._small: dict[int, np.ndarray] = {}  # their work-resolution images, while a clip may still need them

    def process(self, buffer: ClipBuffer) -> list[SegmenterResult]:
        frame = buffer.newest
        index = self._seen
        self._seen += 1
        self._frames[index] = frame
        self._small[index] = resize_to_width(frame.image, self.config.work_width)
        if self.schedule.clip_ready(self._seen):
            start = self.schedule.clip_start(self.schedule.clips_complete(self._seen) - 1)
            stitched = self._clip(start, self.config.clip_length, final=False)
        else:
            stitched = self.stitcher.advance(self._seen)
        return [self._result(s) for s in stitched]

    def flush(self) -> list[SegmenterResult]:
        """End the clip sequence (the stream ended, or frames are missing next): segment the frames no complete
        clip covered and hand over every held frame. The next frame starts a new sequence keeping the ids."""
        if self._seen == 0:
            return []
        tail = self.schedule.tail_clip(self._seen)
        stitched = self._clip(*tail, final=True) if tail is not None else []
        stitched += self.stitcher.flush()
        results = [self._result(s) for s in stitched]
        self.stitcher.restart()
        self._new_clip_sequence()
        return results

    def _clip(self, start: int, length: int, final: bool) -> list:
        """Network, clustering and stitching of frames [start, start + length)."""
        import torch

        from movseg_ros.stem_seg.clustering import cluster

        images = np.stack([self._small[i] for i in range(start, start + length)])
        clip = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        if self.motion is not None:
            with timed(self.clock, "motion"):
                clip = torch.cat([clip, torch.from_numpy(self.motion(images))], dim=1)
        clip = clip[None].to(self._device)
        with timed(self.clock, "network"), torch.inference_mode():
            embeddings, variances, seediness = self.network(clip)
        with timed(self.clock, "clustering"):
            found = cluster(embeddings[0].float(), variances[0].float(), seediness[0].float(), self.clusters)
            tubes = found.ids.cpu().numpy()
            scores = {i + 1: float(s) for i, s in enumerate(found.scores)}
            scores = {k: v for k, v in scores.items() if (tubes == k).any()}
            probabilities = None
            if self.config.smooth_masks:
                probabilities = {k: found.probabilities[k - 1].float().cpu().numpy() for k in scores}
        with timed(self.clock, "stitching"):
            stitched = self.stitcher.add_clip(start, tubes, scores, final=final, probabilities=probabilities)
        for i in [i for i in self._small if i < start + length - self.config.clip_overlap]:
            del self._small[i]  # the next clip starts at start + T - T_c
        return stitched

    def _result(self, stitched) -> SegmenterResult:
        """A published frame: its stitched label map at full resolution, one detection per id."""
        frame = self._frames.pop(stitched.index)
        h0, w0 = frame.size
        work = width_size((h0, w0), self.config.work_width)[::-1]
        if stitched.probabilities:  # smooth at the work size (sub-cell edges), nearest from there: a tenth of the cost
            labels = smooth_labels(stitched.probabilities, work, self.config.mask_threshold)
        else:
            labels = grid_to_image(stitched.labels, work, work, cv2.INTER_NEAREST)
        if labels.shape != (h0, w0):
            labels = grid_to_image(labels, (h0, w0), labels.shape, cv2.INTER_NEAREST)  # a work-size map is its own grid
        detections = []
        for gid, score in sorted(stitched.scores.items()):
            mask = labels == gid
            if mask.any():
                detections.append(Detection(mask, score, True, identity=gid))
        return SegmenterResult(frame, detections)


def grid_to_image(grid: np.ndarray, size: tuple[int, int], work: tuple[int, int], interpolation: int) -> np.ndarray:
    """`grid` resampled to `size` (H, W) of an image whose work-size copy is `work` (h, w).

    The network's output cell i stands for work pixel i * (work / grid), its top-left pixel: training brings
    the masks to the output grid by nearest-neighbour sampling, which takes that pixel. Work and frame pixels
    are centre-aligned (the work image is an area resize). Resizing the grid as an image (cell centres) would
    move every mask by 3/8 of a cell, 1.5 work pixels: 5 frame pixels at 854x480. A grid of the work size
    itself (`work` = its shape) is mapped centre to centre.
    """
    gh, gw = grid.shape[:2]
    (h, w), (wh, ww) = size, work
    m = [[gw / w, 0.0, 0.5 * gw / w - 0.5 * gw / ww], [0.0, gh / h, 0.5 * gh / h - 0.5 * gh / wh]]
    flags = interpolation | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(grid, np.asarray(m, np.float64), (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def smooth_labels(probabilities: dict[int, np.ndarray], size: tuple[int, int], threshold: float,
                  work: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W) uint16 ids at `size`: each id's probability map upsampled bilinearly (placed as the network's
    grid stands: `grid_to_image`, `work` defaulting to `size`), the most probable id where it is above
    `threshold`, else 0. On the maps' own grid this is the clustering's label map."""
    ids = sorted(probabilities)
    stack = np.stack([grid_to_image(probabilities[i], size, work or size, cv2.INTER_LINEAR) for i in ids])
    best = stack.argmax(0)
    lut = np.asarray(ids, np.uint16)
    return np.where(stack.max(0) > threshold, lut[best], 0).astype(np.uint16)
