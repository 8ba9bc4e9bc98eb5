"""The weight-free CPU pipeline: flow, camera ego-motion, residual motion, instances."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.flow import DISFlow, DISFlowConfig
from movseg_ros.segmenters.base import Detection, MotionContext, SegmenterResult


@dataclass(frozen=True)
class GeometricConfig:
    """Settings of the geometric segmenter (work resolution, flow, thresholds)."""

    work_width: int = 424  # frames are processed at this width (aspect kept)
    flow_preset: str = "medium"
    residual_k: float = 3.0  # residual over k robust sigmas counts as motion evidence
    memory: float = 0.5  # weight of the flow-warped previous probability map
    min_area: float = 0.002  # smallest instance, as a fraction of the image

    def __post_init__(self) -> None:
        if not 64 <= self.work_width <= 1920:
            raise ValueError(f"work_width must be in [64, 1920], got {self.work_width}")
        DISFlowConfig(preset=self.flow_preset)
        if not 0.0 <= self.memory < 1.0:
            raise ValueError(f"memory must be in [0, 1), got {self.memory}")


class GeometricSegmenter:
    """Online: each new frame is segmented against the previous one at once."""

    name = "geometric"
    latency_frames = 0
    device = "cpu"

    def __init__(self, config: GeometricConfig = GeometricConfig()) -> None:
        self.config = config
        self.flow = DISFlow(DISFlowConfig(preset=config.flow_preset, scale=1.0))
        self.reset()

    def reset(self) -> None:
        self._prev_grey: np.ndarray | None = None
        self._prob: np.ndarray | None = None

    def process(self, buffer: ClipBuffer) -> list[SegmenterResult]:
        frame = buffer.newest
        h0, w0 = frame.size
        w = min(self.config.work_width, w0)
        h = max(8, int(round(h0 * w / w0)))
        grey = cv2.cvtColor(cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        prev = self._prev_grey
        self._prev_grey = grey
        if prev is None or len(buffer) < 2:
            self._prob = None
            return [SegmenterResult(frame)]
        flow = self.flow.flow_grey(grey, prev)  # current -> previous
        hom_cp, ego = _ego_motion(flow)
        resid = np.linalg.norm(flow - ego, axis=-1)
        sigma = float(np.median(resid)) * 1.4826 + 0.1
        k = self.config.residual_k
        evidence = np.clip((resid / sigma - k) / k, 0.0, 1.0).astype(np.float32)
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        if self._prob is not None and self.config.memory > 0:
            carried = cv2.remap(self._prob, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderValue=0)
            prob = (1 - self.config.memory) * evidence + self.config.memory * carried
        else:
            prob = evidence
        self._prob = prob
        dets = _instances(prob, (h0, w0), self.config.min_area)
        # homography from previous to current at full resolution, for the tracker's static carry
        s = np.diag([w / w0, h / h0, 1.0])
        hom_pc_full = np.linalg.inv(s) @ np.linalg.inv(hom_cp) @ s
        motion = MotionContext(buffer[-2].image, frame.image, hom_pc_full)
        return [SegmenterResult(frame, dets, motion)]


def _ego_motion(flow: np.ndarray, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC homography of the flow field; returns it and the flow it predicts everywhere."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    hom, _ = cv2.findHomography(pts, pts + flow[ys.ravel(), xs.ravel()], cv2.RANSAC, 1.0)
    if hom is None:
        hom = np.eye(3)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    p = np.stack([gx, gy, np.ones_like(gx)], -1) @ hom.T.astype(np.float32)
    ego = p[..., :2] / p[..., 2:3] - np.stack([gx, gy], -1)
    return hom, ego


def _instances(prob: np.ndarray, full: tuple[int, int], min_area: float) -> list[Detection]:
    """Connected regions of prob > 0.5, each a detection scored by its mean probability."""
    m = (prob > 0.5).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    h, w = prob.shape
    dets = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_area * h * w:
            continue
        region = lab == i
        score = float(np.clip(0.5 + prob[region].mean(), 0.0, 1.0))
        mask = cv2.resize(region.astype(np.uint8), (full[1], full[0]), interpolation=cv2.INTER_NEAREST) > 0
        dets.append(Detection(mask, score, True))
    return dets
