"""Training items for seed 000's Mask R-CNN models from a DAVIS-layout folder (DAVIS 2016: one moving-object mask).

Frames are resized to the work width and the flow image is computed as the two-stream segmenter does at
inference: DIS (same preset, scale 1) from frame t back to frame t-1, negated (the motion at frame t's
pixels). So every frame with a previous frame is an item. Item i is a pure function of (seed, i): flip,
scale, crop and colour jitter. Instances are the mask's components, near ones grouped. Items match
SynthDetectionData's; sequences to hold aside (tuning.data.HELD_ASIDE) go in `exclude`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.flow import DISFlow, DISFlowConfig
from movseg_ros.saliency.data import FrameItem, davis_frames, jitter_colour, read_item
from movseg_ros.segmenters.base import resize_to_width
from movseg_ros.two_stream.inputs import check_motion_input, flow_tensor, model_input, motion_flow, rgb_tensor

SCALE = (0.8, 1.25)  # random zoom of an augmented item, then cropped or zero-padded back to the work size


def frame_pairs(items: list[FrameItem]) -> list[tuple[FrameItem, FrameItem]]:
    """(previous, frame) for every frame with a previous one; a gap in a sequence's numbering is a DatasetError."""
    pairs = []
    for prev, item in zip(items, items[1:]):
        if prev.sequence != item.sequence:
            continue
        if prev.image.stem.isdigit() and item.image.stem.isdigit() and int(item.image.stem) != int(prev.image.stem) + 1:
            missing = prev.image.with_name(f"{int(prev.image.stem) + 1:0{len(prev.image.stem)}d}.jpg")
            raise DatasetError(missing, f"missing: the sequence jumps from {prev.image.name} to {item.image.name}")
        pairs.append((prev, item))
    for images, masks in {(i.image.parent, i.mask.parent) for i in items}:  # e.g. a missing last frame
        for mask in sorted(masks.glob("*.png")):
            if not (images / f"{mask.stem}.jpg").is_file():
                raise DatasetError(images / f"{mask.stem}.jpg", f"missing: annotation {mask.name} has no frame")
    return pairs


def mask_instances(mask: np.ndarray, group_gap: float = 0.02, min_pixels: int = 16) -> list[np.ndarray]:
    """The mask's objects: components closer than `group_gap` x the image diagonal are one; small ones dropped."""
    radius = int(round(group_gap * float(np.hypot(*mask.shape))))
    grown = mask.astype(np.uint8)
    if radius > 0:
        grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    count, labels = cv2.connectedComponents(grown, connectivity=8)
    parts = [mask & (labels == k) for k in range(1, count)]
    return [p for p in parts if np.count_nonzero(p) >= min_pixels]


def detection_target(mask: np.ndarray, group_gap: float, min_pixels: int) -> dict[str, torch.Tensor]:
    """A torchvision detection target, label 1 (moving) for each instance; boxes xyxy with x1 = max x + 1."""
    parts = mask_instances(mask, group_gap, min_pixels)
    boxes = []
    for p in parts:
        ys, xs = np.nonzero(p)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    h, w = mask.shape
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "masks": (torch.from_numpy(np.stack(parts).astype(np.uint8)) if parts
                      else torch.zeros((0, h, w), dtype=torch.uint8)),
            "labels": torch.ones(len(parts), dtype=torch.int64),
            "moving": torch.ones(len(parts), dtype=torch.bool)}


def place(plane: np.ndarray, size: tuple[int, int], x0: int, y0: int) -> np.ndarray:
    """`plane` put at (x0, y0) (negative: cropped) on a zero canvas of `size` (w, h)."""
    w, h = size
    out = np.zeros((h, w) + plane.shape[2:], plane.dtype)
    ph, pw = plane.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + pw), min(h, y0 + ph)
    out[ya:yb, xa:xb] = plane[ya - y0:yb - y0, xa - x0:xb - x0]
    return out


def write_atomically(path: Path, array: np.ndarray) -> None:
    """np.save via a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def augment_frame(rgb: np.ndarray, mask: np.ndarray, flow: np.ndarray | None, rng: np.random.Generator,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Flip (flow x negated), zoom (flow scaled) and crop or pad back to the size, colour jitter on RGB."""
    h, w = mask.shape
    flip, s = bool(rng.random() < 0.5), float(rng.uniform(*SCALE))
    sw, sh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    x0 = int(rng.integers(min(0, w - sw), max(0, w - sw) + 1))
    y0 = int(rng.integers(min(0, h - sh), max(0, h - sh) + 1))
    if flip:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
        flow = flow[:, ::-1] * np.array([-1.0, 1.0], np.float32) if flow is not None else None
    zoom = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    rgb = place(cv2.resize(np.ascontiguousarray(rgb), (sw, sh), interpolation=zoom), (w, h), x0, y0)
    mask = place(cv2.resize(mask.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST), (w, h), x0, y0).astype(bool)
    if flow is not None:
        flow = place(cv2.resize(np.ascontiguousarray(flow), (sw, sh), interpolation=cv2.INTER_LINEAR) * s, (w, h), x0, y0)
    return jitter_colour(rgb, rng), mask, flow, {"flip": flip, "scale": s, "offset": (x0, y0)}


class DavisDetectionData(Dataset):
    """Frame t (with t-1 for its flow) of a DAVIS-layout folder as a model input and its target."""

    def __init__(self, root: str | Path, kind: str, sequences: list[str] | None = None, exclude: tuple[str, ...] = (),
                 work_width: int = 320, dis_preset: str = "medium", augment: bool = True, seed: int = 0,
                 cache_dir: str | Path | None = None, min_pixels: int = 16, group_gap: float = 0.02,
                 motion_input: str = "flow") -> None:
        model_input(kind, torch.zeros(3, 1, 1), torch.zeros(3, 1, 1))  # checks the kind
        check_motion_input(motion_input)
        self.motion_input = motion_input
        DISFlowConfig(preset=dis_preset, scale=1.0)  # checks the preset
        self.pairs = frame_pairs(davis_frames(Path(root), sequences, tuple(exclude)))
        if not self.pairs:
            raise DatasetError(root, "no sequence has two frames")
        self.kind, self.work_width, self.dis_preset, self.augment, self.seed = kind, work_width, dis_preset, augment, seed
        self.cache = Path(cache_dir) / f"{dis_preset}_w{work_width}" if cache_dir is not None else None
        self.min_pixels, self.group_gap = min_pixels, group_gap
        self._dis: DISFlow | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dis": None}  # OpenCV's DIS does not pickle (spawned DataLoader workers)

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame t's RGB and mask at the work width (INTER_AREA; the mask nearest)."""
        rgb, mask, _ = read_item(self.pairs[index][1])
        small = resize_to_width(rgb, self.work_width)
        size = (small.shape[1], small.shape[0])
        return small, cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)

    def flow(self, index: int, rgb: np.ndarray | None = None) -> np.ndarray:
        """Motion at frame t's pixels at the work width (H, W, 2) float32 (float16-rounded), cached when asked."""
        prev, item = self.pairs[index]
        path = self.cache / item.sequence / f"{item.image.stem}.npy" if self.cache is not None else None
        rgb = rgb if rgb is not None else self.frame(index)[0]
        if path is not None and path.is_file():
            try:
                cached = np.load(path, allow_pickle=False)
                if cached.shape == rgb.shape[:2] + (2,) and cached.dtype == np.float16:
                    return cached.astype(np.float32)
            except (OSError, ValueError, EOFError):
                pass  # recomputed below
        if self._dis is None:  # built lazily: one per DataLoader worker
            self._dis = DISFlow(DISFlowConfig(preset=self.dis_preset, scale=1.0))
        before = resize_to_width(read_item(prev)[0], self.work_width)
        if before.shape != rgb.shape:
            raise DatasetError(prev.image, f"is not the size of the next frame {item.image.name}")
        motion = (-self._dis(rgb, before)).astype(np.float16)  # as the segmenter: minus the flow back to t-1
        if path is not None:
            write_atomically(path, motion)
        return motion.astype(np.float32)

    def precompute(self, progress: bool = True) -> None:
        """Fill the flow cache for every item (nothing to do for the appearance model)."""
        from tqdm import tqdm

        if self.cache is None:
            raise ValueError("precompute needs a cache_dir")
        if self.kind != "appearance":
            for i in tqdm(range(len(self)), desc=f"flow {self.cache.name}", disable=not progress):
                self.flow(i)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rgb, mask = self.frame(index)
        flow = self.flow(index, rgb) if self.kind != "appearance" else None
        if flow is not None:  # before augmentation: the camera is fitted to the frame's own flow, not a padded one
            flow = motion_flow(flow, self.motion_input)
        rng = np.random.default_rng([self.seed, index])
        chosen: dict[str, Any] = {"flip": False, "scale": 1.0, "offset": (0, 0)}
        if self.augment:
            rgb, mask, flow, chosen = augment_frame(rgb, mask, flow, rng)
        rgb_t = rgb_tensor(rgb)
        flow_t = flow_tensor(flow) if flow is not None else rgb_t
        target = detection_target(mask, self.group_gap, self.min_pixels)
        return {"input": model_input(self.kind, rgb_t, flow_t), "target": target, "seed": index, "augment": chosen}
