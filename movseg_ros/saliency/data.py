"""DAVIS-layout frames with their masks (and U^2-Net-p teacher maps where made) for the saliency network.

Item i is a pure function of (seed, i): frame i mod N under a random scale, crop, flip and colour jitter,
so a resumed run sees the same data. Missing or mis-sized files are DatasetErrors naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.datasets.errors import BadImageFile, DatasetError
from movseg_ros.image_format import ImageFileError, decode_image_file


@dataclass(frozen=True)
class FrameItem:
    """One annotated frame: image, mask and (maybe) teacher map files."""

    sequence: str
    image: Path
    mask: Path
    teacher: Path | None


def davis_frames(root: Path, sequences: list[str] | None = None, exclude: tuple[str, ...] = (),
                 teacher_root: Path | None = None, step: int = 1) -> list[FrameItem]:
    """Every `step`-th annotated frame of a DAVIS-layout set (sequences sorted; `exclude` left out)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "no such data folder")
    names = sequences or sorted(p.name for p in root.iterdir() if (p / "JPEGImages").is_dir())
    unknown = [n for n in list(exclude) + list(sequences or []) if not (root / n / "JPEGImages").is_dir()]
    if unknown:
        raise DatasetError(root, f"no sequence(s) {unknown} here")
    items = []
    for name in names:
        if name in exclude:
            continue
        for image in sorted((root / name / "JPEGImages").glob("*.jpg"))[::step]:
            mask = root / name / "Annotations" / f"{image.stem}.png"
            if not mask.is_file():
                raise DatasetError(mask, f"missing: frame {image.name} has no annotation")
            teacher = teacher_root / name / f"{image.stem}.png" if teacher_root is not None else None
            items.append(FrameItem(name, image, mask, teacher if teacher is not None and teacher.is_file() else None))
    if not items:
        raise DatasetError(root, "no annotated frames")
    return items


def _read(path: Path, flags: int) -> np.ndarray:
    """The file as OpenCV decodes it with `flags`, checked whole first; a BadImageFile names it otherwise."""
    try:
        return decode_image_file(path, flags)
    except ImageFileError as e:
        raise BadImageFile(path, e.problem) from None


def read_item(item: FrameItem) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(RGB uint8, mask bool, teacher float in [0, 1] or None), checked to be one size."""
    rgb = cv2.cvtColor(_read(item.image, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    mask = _read(item.mask, cv2.IMREAD_GRAYSCALE) > 127
    if mask.shape != rgb.shape[:2]:
        raise DatasetError(item.mask, f"is {mask.shape[1]}x{mask.shape[0]} but its frame is {rgb.shape[1]}x{rgb.shape[0]}")
    teacher = None
    if item.teacher is not None:
        teacher = _read(item.teacher, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        if teacher.shape != mask.shape:
            teacher = cv2.resize(teacher, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
    return rgb, mask, teacher


def jitter_colour(rgb: np.ndarray, rng: np.random.Generator, amount: float = 0.25) -> np.ndarray:
    """Brightness, contrast, saturation (each x[1-a, 1+a]) and a hue shift of up to 10 degrees."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180
    hsv[..., 1] *= rng.uniform(1 - amount, 1 + amount)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(1 - amount, 1 + amount) + mean * rng.uniform(1 - amount, 1 + amount)
    return np.clip(out, 0, 255).astype(np.uint8)


class SaliencyFrames(Dataset):
    """Training items {"image" 3xHxW float 0-255, "mask" 1xHxW, "teacher" 1xHxW (-1: none)} at `size` (w, h)."""

    def __init__(self, items: list[FrameItem], size: tuple[int, int], length: int, seed: int = 0,
                 augment: bool = True, scale: tuple[float, float] = (0.8, 1.3)) -> None:
        if not items:
            raise ValueError("no frames")
        self.items, self.size, self.length, self.seed, self.augment, self.scale = items, size, length, seed, augment, scale

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.items[i % len(self.items)]
        rgb, mask, teacher = read_item(item)
        w, h = self.size
        rng = np.random.default_rng((self.seed, i))
        s = rng.uniform(*self.scale) if self.augment else 1.0
        fit = max(w / rgb.shape[1], h / rgb.shape[0]) * s
        sw, sh = max(w, int(round(rgb.shape[1] * fit))), max(h, int(round(rgb.shape[0] * fit)))
        x0 = int(rng.integers(0, sw - w + 1)) if self.augment else (sw - w) // 2
        y0 = int(rng.integers(0, sh - h + 1)) if self.augment else (sh - h) // 2
        planes = [cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA),
                  cv2.resize(mask.astype(np.float32), (sw, sh), interpolation=cv2.INTER_LINEAR),
                  cv2.resize(teacher, (sw, sh), interpolation=cv2.INTER_LINEAR) if teacher is not None else None]
        planes = [p[y0:y0 + h, x0:x0 + w] if p is not None else None for p in planes]
        if self.augment and rng.random() < 0.5:
            planes = [p[:, ::-1] if p is not None else None for p in planes]
        image, m, t = planes
        if self.augment:
            image = jitter_colour(np.ascontiguousarray(image), rng)
        return {"image": torch.from_numpy(np.ascontiguousarray(image).transpose(2, 0, 1)).float(),
                "mask": torch.from_numpy(np.ascontiguousarray(m))[None].float(),
                "teacher": (torch.from_numpy(np.ascontiguousarray(t))[None].float() if t is not None
                            else torch.full((1, h, w), -1.0)),
                "sequence": item.sequence}


def collate_frames(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: torch.stack([i[k] for i in items]) if k != "sequence" else [i[k] for i in items] for k in items[0]}
