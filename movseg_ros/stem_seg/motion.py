"""The camera-compensated motion a STEm-Seg clip can carry beside its RGB: what moves independently of the camera.

Seed 004 sees RGB only, so from eight frames it cannot tell a mover from a salient object that stands still
(our synthetic streams: static objects got the highest seeds). A network built with `motion_channels: 3`
reads, for every frame, the DIS flow to the frame before minus the flow of the camera's homography, in units
of the frame's robust spread (what the geometric pipeline calls residual motion): x, y and magnitude, each
clipped to +-MAX_SIGMAS and divided by it. Frame 0 of a clip uses the negated flow to frame 1, so a clip needs
nothing outside itself and training and the node compute the same thing.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from movseg_ros.ego_motion import camera_residual, robust_spread
from movseg_ros.flow import DISFlow, DISFlowConfig
from movseg_ros.stem_seg.arch import MOTION_CHANNELS, StemSegArch

MAX_SIGMAS = 8.0  # residuals are clipped to this many robust sigmas, then scaled to [-1, 1] (magnitude [0, 1])
FLOW_PRESET = "ultrafast"  # DIS at the clip's work size (256x144: about 1 ms a frame)


def motion_for(arch: StemSegArch) -> "ClipMotion | None":
    """The residual-motion maker a network of `arch` needs (None for an RGB-only one)."""
    return ClipMotion() if arch.motion_channels else None


class ClipMotion:
    """Residual-motion channels of a clip of RGB frames (one DIS flow and one homography fit a frame)."""

    def __init__(self) -> None:
        self.flow = DISFlow(DISFlowConfig(preset=FLOW_PRESET, scale=1.0))

    def frame(self, grey: np.ndarray, other: np.ndarray, sign: float = 1.0) -> np.ndarray:
        """(3, H, W) float32: `sign` x (flow grey -> other minus the camera's), in robust sigmas, scaled."""
        residual, magnitude = camera_residual(self.flow.flow_grey(grey, other))
        out = np.empty((MOTION_CHANNELS, *grey.shape), np.float32)
        out[0] = sign * residual[..., 0]
        out[1] = sign * residual[..., 1]
        out[2] = magnitude
        out *= 1.0 / (robust_spread(magnitude) * MAX_SIGMAS)
        return np.clip(out, -1.0, 1.0, out=out)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB -> (T, 3, H, W) float32; a one-frame clip has no motion (zeros)."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"ClipMotion: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        t = len(frames)
        out = np.zeros((t, MOTION_CHANNELS, *frames.shape[1:3]), np.float32)
        if t < 2:
            return out
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        out[0] = self.frame(grey[0], grey[1], sign=-1.0)
        for j in range(1, t):
            out[j] = self.frame(grey[j], grey[j - 1])
        return out

    def extend(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) RGB in [0, 1] -> (B, T, 3 + MOTION_CHANNELS, H, W): the clip with its motion appended."""
        rgb = clips.detach().mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
        motion = torch.from_numpy(np.stack([self(c) for c in rgb])).to(clips.device, clips.dtype)
        return torch.cat([clips, motion], dim=2)
