"""Seed 004 §3 training clips, mixed on the fly: generator clips, clips animated from single images, and
real video clips, all as the same item at one size and length.

Item: {"images": (T,3,H,W) float32 [0,1], "instances": (T,H,W) int64 (0 background, ids consistent over the
clip), "ignore": (T,H,W) bool (left out of the losses), "source": str, "origin": str (what the item was made
from, for logs)}. Item i is a pure function of (base_seed, i): the same in any process, order or number of
DataLoader workers. Batch with collate_clips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.datasets import DatasetError, open_dataset
from movseg_ros.datasets.coco_instances import CocoInstances
from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.config import SynthConfig

INSTANCE_KINDS = ("moving", "all")  # generator clips: instances are the objects that ever move, or every object
FITS = ("stretch", "pad", "crop")  # to the training size: distort, fit inside and pad (ignored), or cover and crop
SHORT = ("pad", "skip")  # video sequences with fewer annotated frames than the clip length
# Per-dataset salts so datasets built with the same base seed draw different random streams.
_SALT_ANIMATED, _SALT_VIDEO, _SALT_MIXED = 41, 42, 43


class ImageInstances(Protocol):
    """Single images with instance masks: item i is ((H,W,3) uint8 RGB, (H,W) integer ids, 0 = background)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


def _check_count(what: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{what} must be an integer >= {least}, got {value!r}")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if not (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 8 for v in size)):
        raise ValueError(f"size must be (width, height), integers >= 8, got {size!r}")
    return int(size[0]), int(size[1])


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{what} '{value}' is not one of {', '.join(choices)}")


def _check_index(index: int, length: int) -> int:
    if not -length <= index < length:
        raise IndexError(f"item {index} out of range for a dataset of {length}")
    return index % length


def _item(images: np.ndarray, instances: np.ndarray, ignore: np.ndarray, source: str, origin: str) -> dict[str, Any]:
    """numpy (T,H,W,3) uint8, (T,H,W) ids, (T,H,W) bool -> the item dict of tensors."""
    return {
        "images": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float().div_(255.0),
        "instances": torch.from_numpy(instances.astype(np.int64)),
        "ignore": torch.from_numpy(np.ascontiguousarray(ignore, dtype=bool)),
        "source": source,
        "origin": origin,
    }


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack to images (B,T,3,H,W), instances (B,T,H,W), ignore (B,T,H,W); source and origin as lists."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    shapes = {tuple(i["images"].shape) for i in items}
    if len(shapes) > 1:
        raise ValueError(f"clips of different shapes in one batch: {sorted(shapes)} (T,3,H,W)")
    return {
        "images": torch.stack([i["images"] for i in items]),
        "instances": torch.stack([i["instances"] for i in items]),
        "ignore": torch.stack([i["ignore"] for i in items]),
        "source": [i["source"] for i in items],
        "origin": [i.get("origin", "") for i in items],
    }


# --------------------------------------------------------------------------------------------- warping


def fit_matrix(src_hw: tuple[int, int], size: tuple[int, int], fit: str, rng: np.random.Generator) -> np.ndarray:
    """3x3 map from source pixels to output pixels (pixel centres kept aligned); "crop" draws its offset from rng."""
    h, w = src_hw
    out_w, out_h = size
    if fit == "stretch":
        sx, sy, ox, oy = out_w / w, out_h / h, 0.0, 0.0
    else:
        s = min(out_w / w, out_h / h) if fit == "pad" else max(out_w / w, out_h / h)
        sx = sy = s
        free_x, free_y = out_w - s * w, out_h - s * h  # >= 0 for pad (centred), <= 0 for crop (random)
        ox, oy = (free_x / 2, free_y / 2) if fit == "pad" else (rng.uniform(free_x, 0.0), rng.uniform(free_y, 0.0))
    return np.array([[sx, 0.0, 0.5 * sx - 0.5 + ox], [0.0, sy, 0.5 * sy - 0.5 + oy], [0.0, 0.0, 1.0]])


def warp_frame(image: np.ndarray, ids: np.ndarray, void: np.ndarray | None, matrix: np.ndarray,
               size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image (bilinear), ids (nearest) and ignore under a 3x3 affine map to `size`.

    Pixels whose nearest source pixel lies outside the image are black and background, and ignored; void
    pixels keep their image content (void lines trace object borders: blacking them would give them away)
    and are ignored too.
    """
    m = matrix[:2].astype(np.float64)
    out = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # int32 ids (warpAffine has no int64) with -1 brought in from outside; void as its own nearest warp.
    warped_ids = cv2.warpAffine(ids.astype(np.int32), m, size, flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    outside = warped_ids < 0
    out[outside] = 0
    warped_ids[outside] = 0
    ignore = outside
    if void is not None:
        ignore |= cv2.warpAffine(void.astype(np.uint8), m, size, flags=cv2.INTER_NEAREST,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        warped_ids[ignore] = 0
    return out, warped_ids, ignore


# --------------------------------------------------------------------------------------------- generator clips


class SynthClips(Dataset):
    """Generator clips (item i = clip seed base_seed + i, T = config.frames, size = config's width x height).

    instances="moving": the objects that move at some point in the clip (as the generator's bag writer
    labels them), static objects are background; "all": every object. Nothing is ignored.
    """

    def __init__(self, config: SynthConfig, length: int, base_seed: int = 0, instances: str = "moving",
                 name: str = "synth") -> None:
        _check_count("length", length, 1)
        _check_count("base_seed", base_seed, 0)
        _check_choice("instances", instances, INSTANCE_KINDS)
        self.config, self.length, self.base_seed, self.instances, self.name = config, length, base_seed, instances, name
        self.frames, self.size = config.frames, (config.width, config.height)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        seed = self.base_seed + _check_index(index, self.length)
        clip = generate_clip(self.config, seed)
        ids = clip.instances
        if self.instances == "moving":
            movers = np.flatnonzero(clip.moving.any(axis=0))
            ids = np.where(np.isin(ids, movers[movers > 0]), ids, 0)
        return _item(clip.images, ids, np.zeros(ids.shape, bool), self.name, f"synth seed {seed}")


# --------------------------------------------------------------------------------------------- image sources


class CocoImages:
    """A CocoInstances data set as (image, ids): masks painted largest first, so small objects stay on top."""

    name = "coco"

    def __init__(self, coco: CocoInstances) -> None:
        self.coco = coco

    @classmethod
    def open(cls, annotations: Path | str, images: Path | str, min_area: float = 16.0) -> "CocoImages":
        """From a COCO-format annotations file and its image folder."""
        return cls(CocoInstances(annotations, images, min_area))

    def __len__(self) -> int:
        return len(self.coco)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        item = self.coco[index]
        image = item["image"].mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()
        masks = item["target"]["masks"].numpy().astype(bool)
        ids = np.zeros(image.shape[:2], np.int32)
        for k in sorted(range(len(masks)), key=lambda k: -int(masks[k].sum())):
            ids[masks[k]] = k + 1
        return image, ids


class SynthImages:
    """Single generator frames as (image, ids): frame 0 of clip seed base_seed + i, every object an instance
    (objectness, as COCO)."""

    name = "synth"

    def __init__(self, config: SynthConfig, length: int, base_seed: int = 0) -> None:
        _check_count("length", length, 1)
        _check_count("base_seed", base_seed, 0)
        self.config, self.length, self.base_seed = config.replace(frames=2), length, base_seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        clip = generate_clip(self.config, self.base_seed + _check_index(index, self.length))
        return clip.images[0], clip.instances[0]


# --------------------------------------------------------------------------------------------- animated images


@dataclass(frozen=True)
class AnimateConfig:
    """Per-frame augmentations that turn one image into a clip (seed 004 §3): each frame drawn independently."""

    rotation_deg: float = 10.0  # rotation uniform in [-r, r]
    translation: float = 0.1  # shift uniform in [-t, t] of the width / height, per axis
    scale: tuple[float, float] = (0.8, 1.2)  # zoom uniform in this range
    hue_deg: float = 8.0  # hue offset uniform in [-h, h] degrees
    saturation: float = 0.08  # saturation offset uniform in [-s, s] (saturation in [0, 1])
    blur_probability: float = 0.3  # chance of a linear (camera) motion blur on a frame
    blur_length: tuple[int, int] = (3, 9)  # blur line length in output pixels (range, inclusive)

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.rotation_deg <= 180, "rotation_deg", "must be in [0, 180]"),
            (0 <= self.translation <= 1, "translation", "must be in [0, 1]"),
            (len(self.scale) == 2 and 0 < self.scale[0] <= self.scale[1], "scale", "must be a range 0 < lo <= hi"),
            (0 <= self.hue_deg <= 180, "hue_deg", "must be in [0, 180]"),
            (0 <= self.saturation <= 1, "saturation", "must be in [0, 1]"),
            (0 <= self.blur_probability <= 1, "blur_probability", "must be a probability in [0, 1]"),
            (len(self.blur_length) == 2 and 1 <= self.blur_length[0] <= self.blur_length[1], "blur_length",
             "must be a range 1 <= lo <= hi"),
        ]
        for ok, name, problem in checks:
            if not ok:
                raise ValueError(f"animate setting {name} {problem}, got {getattr(self, name)!r}")


def jitter_matrix(rng: np.random.Generator, config: AnimateConfig, size: tuple[int, int]) -> np.ndarray:
    """3x3 random rotation and scale about the output centre, then a translation."""
    w, h = size
    angle = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    s = rng.uniform(*config.scale)
    tx, ty = rng.uniform(-config.translation, config.translation, 2) * (w, h)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    c, si = s * math.cos(angle), s * math.sin(angle)
    return np.array([[c, -si, cx + tx - c * cx + si * cy], [si, c, cy + ty - si * cx - c * cy], [0.0, 0.0, 1.0]])


def shift_hue_saturation(image: np.ndarray, hue_deg: float, saturation: float) -> np.ndarray:
    """RGB uint8 with hue turned by hue_deg and saturation offset (clipped to [0, 1]); brightness kept."""
    hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + hue_deg) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] + saturation, 0.0, 1.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def line_blur(image: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """Linear motion blur: the mean along a centred line of `length` pixels at `angle_deg`."""
    k = length if length % 2 else length + 1
    kernel = np.zeros((k, k), np.float32)
    c, r = k // 2, (length - 1) / 2
    dx, dy = r * math.cos(math.radians(angle_deg)), r * math.sin(math.radians(angle_deg))
    shift = 4  # sub-pixel line end points (cv2.line fixed point)
    p0 = (round((c - dx) * (1 << shift)), round((c - dy) * (1 << shift)))
    p1 = (round((c + dx) * (1 << shift)), round((c + dy) * (1 << shift)))
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, shift)
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


class AnimatedImageClips(Dataset):
    """Clips made from single images with instance masks (seed 004 §3): every frame is the image under an
    independent random affine, hue/saturation offset and (sometimes) linear motion blur.

    Item i draws, from an RNG seeded by (base_seed, i), an image of `source` (with replacement), a fit to
    `size` (for "crop" one window for the whole clip) and each frame's augmentation. Masks warp with
    nearest neighbours and are never blurred; pixels the warp brings in from outside the image are ignore.
    """

    def __init__(self, source: ImageInstances, frames: int, size: tuple[int, int], length: int, base_seed: int = 0,
                 config: AnimateConfig = AnimateConfig(), fit: str = "crop", name: str = "") -> None:
        _check_count("frames", frames, 1)
        _check_count("length", length, 1)
        _check_count("base_seed", base_seed, 0)
        _check_choice("fit", fit, FITS)
        if len(source) < 1:
            raise ValueError(f"image source {getattr(source, 'name', type(source).__name__)} is empty")
        self.source, self.frames, self.size, self.length = source, frames, _check_size(size), length
        self.base_seed, self.config, self.fit = base_seed, config, fit
        self.name = name or f"animated:{getattr(source, 'name', type(source).__name__)}"

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = _check_index(index, self.length)
        rng = np.random.default_rng([self.base_seed, index, _SALT_ANIMATED])
        j = int(rng.integers(len(self.source)))
        image, ids = self.source[j]
        image, ids = _checked_pair(image, ids, f"{self.name} image {j}")
        base = fit_matrix(ids.shape, self.size, self.fit, rng)
        w, h = self.size
        images = np.empty((self.frames, h, w, 3), np.uint8)
        instances = np.empty((self.frames, h, w), np.int32)
        ignore = np.empty((self.frames, h, w), bool)
        cfg = self.config
        for t in range(self.frames):
            matrix = jitter_matrix(rng, cfg, self.size) @ base
            frame, instances[t], ignore[t] = warp_frame(image, ids, None, matrix, self.size)
            hue, sat = rng.uniform(-cfg.hue_deg, cfg.hue_deg), rng.uniform(-cfg.saturation, cfg.saturation)
            frame = shift_hue_saturation(frame, hue, sat)
            if rng.random() < cfg.blur_probability:
                length = int(rng.integers(cfg.blur_length[0], cfg.blur_length[1] + 1))
                frame = line_blur(frame, length, rng.uniform(0.0, 180.0))
            images[t] = frame
        return _item(images, instances, ignore, self.name, f"{self.name} image {j}")


def _checked_pair(image: Any, ids: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    image, ids = np.asarray(image), np.asarray(ids)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what}: image must be (H,W,3) uint8 RGB, got {image.shape} {image.dtype}")
    if ids.shape != image.shape[:2] or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{what}: instance ids must be (H,W) integers matching the image {image.shape[:2]}, "
                         f"got {ids.shape} {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{what}: instance ids must be in [0, 2^31), got {ids.min()}..{ids.max()}")
    return image, ids.astype(np.int32)


# --------------------------------------------------------------------------------------------- video clips


class VideoClips(Dataset):
    """Clips of T consecutive annotated frames of a video data set (DAVIS layout, or any open_dataset reads).

    Item i: an RNG seeded by (base_seed, i) picks a sequence (uniformly), a start among its annotated frames,
    a horizontal flip of the whole clip (flip_probability) and, for fit="crop", one window. "Consecutive" is
    consecutive in the annotated list (every frame in DAVIS, every 5th in YouTube-VOS). Images warp bilinear,
    ids nearest; DAVIS 2016 binary masks are instance 1, 2017 palette ids are kept; void and pixels from
    outside the frame are ignore. Sequences with fewer than T annotated frames are padded by repeating their
    last one (short="pad", nothing marked) or left out (short="skip").
    """

    def __init__(self, root: Path | str, frames: int, size: tuple[int, int], length: int, base_seed: int = 0,
                 sequences: list[str] | None = None, kind: str = "auto", fit: str = "stretch",
                 short: str = "pad", flip_probability: float = 0.5, name: str = "video") -> None:
        _check_count("frames", frames, 1)
        _check_count("length", length, 1)
        _check_count("base_seed", base_seed, 0)
        _check_choice("fit", fit, FITS)
        _check_choice("short", short, SHORT)
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability}")
        self.root, self.frames, self.size, self.length = Path(root), frames, _check_size(size), length
        self.base_seed, self.fit, self.short, self.flip_probability, self.name = base_seed, fit, short, \
            flip_probability, name
        found = open_dataset(self.root, kind, names=sequences)
        annotated = [s for s in found if s.annotated]
        self.sequences: list[VideoSequence] = [s for s in annotated if short == "pad" or len(s.annotated) >= frames]
        if not self.sequences:
            why = (f"no sequence with annotations among {len(found)}" if not annotated else
                   f"no sequence with at least {frames} annotated frames (short='skip'; longest has "
                   f"{max(len(s.annotated) for s in annotated)})")
            raise DatasetError(self.root, f"{why}; a training clip needs annotated frames")

    def __len__(self) -> int:
        return self.length

    def pick(self, index: int) -> tuple[VideoSequence, list[int], bool, np.random.Generator]:
        """Item `index`'s sequence, frame indices, flip and the RNG (for the crop window)."""
        index = _check_index(index, self.length)
        rng = np.random.default_rng([self.base_seed, index, _SALT_VIDEO])
        seq = self.sequences[int(rng.integers(len(self.sequences)))]
        annotated = list(seq.annotated)
        start = int(rng.integers(max(len(annotated) - self.frames, 0) + 1))
        chosen = annotated[start:start + self.frames]
        chosen += [chosen[-1]] * (self.frames - len(chosen))
        return seq, chosen, bool(rng.random() < self.flip_probability), rng

    def __getitem__(self, index: int) -> dict[str, Any]:
        seq, chosen, flip, rng = self.pick(index)
        matrix = fit_matrix(seq.size, self.size, self.fit, rng)
        if flip:
            matrix = np.array([[-1.0, 0.0, self.size[0] - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ matrix
        w, h = self.size
        images = np.empty((self.frames, h, w, 3), np.uint8)
        instances = np.empty((self.frames, h, w), np.int32)
        ignore = np.empty((self.frames, h, w), bool)
        for t, f in enumerate(chosen):
            images[t], instances[t], ignore[t] = warp_frame(seq.image(f), seq.labels(f), seq.ignore(f), matrix,
                                                            self.size)
        span = f"{seq.frame_names[chosen[0]]}-{seq.frame_names[chosen[-1]]}"
        return _item(images, instances, ignore, self.name, f"{seq.name} {span}{' flipped' if flip else ''}")


# --------------------------------------------------------------------------------------------- mixing


class MixedClips(Dataset):
    """Items drawn from several clip data sets by weight: item i's RNG, seeded by (base_seed, i), picks a
    source with probability weight / sum and then one of that source's items uniformly."""

    def __init__(self, sources: Sequence[tuple[Dataset, float]], length: int, base_seed: int = 0) -> None:
        _check_count("length", length, 1)
        _check_count("base_seed", base_seed, 0)
        if not sources:
            raise ValueError("MixedClips needs at least one (dataset, weight) source, got none")
        for k, (data, weight) in enumerate(sources):
            what = f"source {k} ({getattr(data, 'name', type(data).__name__)})"
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)) \
                    or not (math.isfinite(weight) and weight > 0):
                raise ValueError(f"{what}: weight must be a finite number > 0, got {weight!r}")
            if len(data) < 1:  # type: ignore[arg-type]
                raise ValueError(f"{what} is empty")
        for attr in ("frames", "size"):
            values = {getattr(d, attr) for d, _ in sources if hasattr(d, attr)}
            if len(values) > 1:
                raise ValueError(f"sources disagree on {attr}: {sorted(values)}; every clip must have one {attr}")
        self.sources = [d for d, _ in sources]
        weights = np.array([float(w) for _, w in sources])
        self.probabilities = weights / weights.sum()
        self.length, self.base_seed = length, base_seed

    def __len__(self) -> int:
        return self.length

    def _pick(self, index: int) -> tuple[int, int]:
        index = _check_index(index, self.length)
        rng = np.random.default_rng([self.base_seed, index, _SALT_MIXED])
        k = int(rng.choice(len(self.sources), p=self.probabilities))
        return k, int(rng.integers(len(self.sources[k])))  # type: ignore[arg-type]

    def source_of(self, index: int) -> int:
        """Which source (position in the list) item `index` comes from."""
        return self._pick(index)[0]

    def counts(self) -> list[int]:
        """Items per source over the whole data set (cheap: no item is built)."""
        counts = [0] * len(self.sources)
        for i in range(self.length):
            counts[self.source_of(i)] += 1
        return counts

    def __getitem__(self, index: int) -> dict[str, Any]:
        k, j = self._pick(index)
        return self.sources[k][j]
