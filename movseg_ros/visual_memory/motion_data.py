"""MP-Net's training and held-out items: the angle field of the flow at frame t, and the mask of what
moves independently between t and t+1.

Synthetic pairs come from the generator (its exact forward flow, or DIS's estimate from frame t to t+1
as the two-stream stage computes it); DAVIS-2016 frames come through DavisDetectionData (its cached DIS
flow at frame t, its mask as the moving label). Item i is a pure function of (seed, i), so a resumed run
sees the data an uninterrupted one would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.flow import DISFlow, DISFlowConfig
from movseg_ros.synth.clip import Clip, generate_clip
from movseg_ros.synth.config import SynthConfig
from movseg_ros.two_stream.inputs import check_motion_input, motion_flow
from movseg_ros.visual_memory.angle_field import field_tensor

FLOW_SOURCES = ("truth", "dis")


def moving_mask(clip: Clip, t: int) -> np.ndarray:
    """Frame t's pixels on the instances that move between t and t+1: the interval clip.flow[t] covers."""
    return np.isin(clip.instances[t], clip.moving_ids(t))


def motion_item(flow: np.ndarray, mask: np.ndarray) -> dict[str, torch.Tensor]:
    """{"field": 3xHxW angle field, "mask": 1xHxW float 0/1}; `flow` as the network reads it (motion_flow)."""
    return {"field": field_tensor(flow), "mask": torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None]}


class SynthMotionData(Dataset):
    """Frame 0 of 2-frame clip `seeds[i]`: its flow's angle field and its moving instances."""

    def __init__(self, config: SynthConfig, seeds: range, flow_source: str = "truth", dis_preset: str = "medium",
                 motion_input: str = "flow") -> None:
        check_motion_input(motion_input)
        if flow_source not in FLOW_SOURCES:
            raise ValueError(f"flow source '{flow_source}' is not one of {', '.join(FLOW_SOURCES)}")
        if len(seeds) < 1:
            raise ValueError(f"seed range {seeds} is empty")
        DISFlowConfig(preset=dis_preset, scale=1.0)  # checks the preset
        self.config, self.seeds, self.flow_source, self.dis_preset = config.replace(frames=2), seeds, flow_source, dis_preset
        self.motion_input = motion_input
        self._dis: DISFlow | None = None

    def __len__(self) -> int:
        return len(self.seeds)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dis": None}  # OpenCV's DIS does not pickle (spawned DataLoader workers)

    def flow(self, clip: Clip) -> np.ndarray:
        """Frame 0's forward flow: the exact one, or DIS (scale 1) from frame 0 to frame 1."""
        if self.flow_source == "truth":
            return clip.flow[0]
        if self._dis is None:  # built lazily: one per DataLoader worker
            self._dis = DISFlow(DISFlowConfig(preset=self.dis_preset, scale=1.0))
        return self._dis(clip.images[0], clip.images[1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = generate_clip(self.config, self.seeds[index % len(self.seeds)])
        flow = motion_flow(self.flow(clip), self.motion_input)
        return {**motion_item(flow, moving_mask(clip, 0)), "seed": clip.seed}


class DavisMotionData(Dataset):
    """DAVIS-layout frames t (with t-1 for the flow) at the work width: angle field and mask.

    Item i is pair i mod N (of every `step`-th pair) under augment_frame's flip, zoom and crop drawn from
    (seed, i); `length` (default N) may exceed N so that every step of a long run draws a new augmentation.
    With `motion_input: residual` the camera's homography is taken out of each frame's own flow first.
    """

    def __init__(self, root: str | Path, sequences: list[str] | None = None, exclude: tuple[str, ...] = (),
                 work_width: int = 320, dis_preset: str = "medium", cache_dir: str | Path | None = None,
                 augment: bool = True, seed: int = 0, length: int = 0, step: int = 1,
                 motion_input: str = "flow") -> None:
        from movseg_ros.two_stream.davis_data import DavisDetectionData

        check_motion_input(motion_input)
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        self.frames = DavisDetectionData(root, "motion", sequences, tuple(exclude), work_width, dis_preset,
                                         augment=False, seed=seed, cache_dir=cache_dir)
        self.index = list(range(0, len(self.frames), step))
        self.length = length or len(self.index)
        self.augment, self.seed, self.motion_input = augment, seed, motion_input

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        from movseg_ros.two_stream.davis_data import augment_frame

        k = self.index[i % len(self.index)]
        rgb, mask = self.frames.frame(k)
        flow = motion_flow(self.frames.flow(k, rgb), self.motion_input)
        if self.augment:
            _, mask, flow, _ = augment_frame(rgb, mask, flow, np.random.default_rng([self.seed, i]))
        item = self.frames.pairs[k][1]
        return {**motion_item(flow, mask), "sequence": item.sequence, "frame": item.image.stem}


def collate_motion(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Fields and masks stacked (one size per phase); other keys as lists."""
    return {k: torch.stack([i[k] for i in items]) if isinstance(items[0][k], torch.Tensor) else [i[k] for i in items]
            for k in items[0]}
