"""PyTorch Datasets of synthetic clips and frame pairs (the one synth module that imports torch).

Item i is generated from seed base_seed + i, so items are the same in any process, in any order,
with any number of DataLoader workers; the texture bank loads once per worker process.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.synth.clip import Clip, generate_clip
from movseg_ros.synth.config import SynthConfig, SynthConfigError


def _check_size(length: int, base_seed: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise SynthConfigError(f"dataset length must be an integer >= 1, got {length!r}")
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) or base_seed < 0:
        raise SynthConfigError(f"dataset base_seed must be an integer >= 0, got {base_seed!r}")


def _images(images: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(images, -1, -3))).float().div_(255.0)


def _flow(flow: np.ndarray) -> torch.Tensor:
    """(..., H, W, 2) -> (..., 2, H, W) float32, pixels, x then y."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(flow, -1, -3)))


class SynthClipDataset(Dataset):
    """Whole clips as tensors: images (T,3,H,W) float [0,1], flow (T-1,2,H,W), instances (T,H,W) int64,
    moving (T, K+1) bool padded to K = the most objects the config allows (so batches collate)."""

    def __init__(self, config: SynthConfig, length: int, base_seed: int = 0) -> None:
        _check_size(length, base_seed)
        self.config, self.length, self.base_seed = config, length, base_seed
        self.max_instances = config.n_moving[1] + config.n_static[1]

    def __len__(self) -> int:
        return self.length

    def clip(self, index: int) -> Clip:
        """The numpy clip behind item `index`."""
        if not -self.length <= index < self.length:
            raise IndexError(f"item {index} out of range for a dataset of {self.length}")
        return generate_clip(self.config, self.base_seed + index % self.length)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clip(index)
        moving = np.zeros((clip.moving.shape[0], self.max_instances + 1), bool)
        moving[:, : clip.moving.shape[1]] = clip.moving
        return {
            "images": _images(clip.images),
            "flow": _flow(clip.flow),
            "instances": torch.from_numpy(clip.instances.astype(np.int64)),
            "moving": torch.from_numpy(moving),
            "num_instances": clip.n_instances,
            "seed": clip.seed,
        }


class SynthPairDataset(Dataset):
    """Frame pairs (t, t+1) for a motion stream: both images, the exact flow, and a torchvision
    detection target for frame t: boxes (N,4 xyxy float), labels (N int64: 1 moving, 2 static),
    masks (N,H,W uint8), moving (N bool), ids (N int64).

    Each item is its own 2-frame clip (seed base_seed + i). Instances with fewer than `min_pixels`
    visible pixels are left out; with include_static=False only the moving ones are kept (all label 1,
    as "segment anything that moves" trains its motion stream). Batch with collate_pairs.
    """

    def __init__(self, config: SynthConfig, length: int, base_seed: int = 0, include_static: bool = True,
                 min_pixels: int = 16) -> None:
        _check_size(length, base_seed)
        if min_pixels < 1:
            raise SynthConfigError(f"min_pixels must be >= 1, got {min_pixels}")
        self.config = config.replace(frames=2)
        self.length, self.base_seed = length, base_seed
        self.include_static, self.min_pixels = include_static, min_pixels

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.length <= index < self.length:
            raise IndexError(f"item {index} out of range for a dataset of {self.length}")
        clip = generate_clip(self.config, self.base_seed + index % self.length)
        return {
            "image": _images(clip.images[0]),
            "next_image": _images(clip.images[1]),
            "flow": _flow(clip.flow[0]),
            "target": detection_target(clip, 0, self.include_static, self.min_pixels),
            "seed": clip.seed,
        }


def detection_target(clip: Clip, t: int, include_static: bool = True, min_pixels: int = 16) -> dict[str, torch.Tensor]:
    """Frame t's visible instances as a torchvision detection target (see SynthPairDataset)."""
    ids, masks, boxes = [], [], []
    for oid in clip.depth_order(t):
        if not include_static and not clip.moving[t, oid]:
            continue
        mask = clip.instances[t] == oid
        if np.count_nonzero(mask) < min_pixels:
            continue
        ys, xs = np.nonzero(mask)
        ids.append(oid)
        masks.append(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    h, w = clip.instances.shape[1:]
    moving = torch.tensor([bool(clip.moving[t, i]) for i in ids], dtype=torch.bool)
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.where(moving, 1, 2).to(torch.int64),
        "masks": torch.from_numpy(np.stack(masks).astype(np.uint8)) if masks else torch.zeros((0, h, w), dtype=torch.uint8),
        "moving": moving,
        "ids": torch.tensor(ids, dtype=torch.int64),
    }


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images and flows; keep targets as a list (their sizes differ), as torchvision detectors take them."""
    return {
        "image": torch.stack([i["image"] for i in items]),
        "next_image": torch.stack([i["next_image"] for i in items]),
        "flow": torch.stack([i["flow"] for i in items]),
        "targets": [i["target"] for i in items],
        "seed": torch.tensor([i["seed"] for i in items]),
    }
