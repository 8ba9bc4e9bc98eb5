"""Training pairs for flow: frames t, t+1 of a synthetic clip and the exact flow t -> t+1."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.config import SynthConfig


def rgb_to_raft(images: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1], as torchvision's RAFT takes."""
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(images, -1, -3))).float()
    return t.mul_(2.0 / 255.0).sub_(1.0)


class FlowPairDataset(Dataset):
    """Item i: the first two frames of the clip of seed `seeds[i]`, optionally cropped at random (the
    crop drawn from (crop_seed, clip seed), so an item is the same in every process and epoch).

    Returns image1, image2 (3,h,w float32 in [-1, 1]), flow (2,h,w float32 pixels, x then y), seed.
    """

    def __init__(self, config: SynthConfig, seeds: Sequence[int], crop: tuple[int, int] | None = None,
                 crop_seed: int = 0) -> None:
        self.config = config.replace(frames=2)
        self.seeds = seeds
        if crop is not None and (crop[0] > self.config.width or crop[1] > self.config.height):
            raise ValueError(f"crop {crop[0]}x{crop[1]} is larger than the generated "
                             f"{self.config.width}x{self.config.height} frames")
        self.crop = crop
        self.crop_seed = crop_seed

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: int) -> dict[str, Any]:
        seed = int(self.seeds[index])
        clip = generate_clip(self.config, seed)
        images, flow = clip.images[:2], clip.flow[0]
        if self.crop is not None:
            cw, ch = self.crop
            h, w = flow.shape[:2]
            rng = np.random.default_rng([self.crop_seed, seed])
            y0 = int(rng.integers(0, h - ch + 1))
            x0 = int(rng.integers(0, w - cw + 1))
            images = images[:, y0:y0 + ch, x0:x0 + cw]
            flow = flow[y0:y0 + ch, x0:x0 + cw]
        return {
            "image1": rgb_to_raft(images[0]),
            "image2": rgb_to_raft(images[1]),
            "flow": torch.from_numpy(np.ascontiguousarray(np.moveaxis(flow, -1, 0))).float(),
            "seed": seed,
        }
