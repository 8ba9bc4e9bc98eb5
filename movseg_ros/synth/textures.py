"""Real-photograph material for the generator: background photos and object cut-outs.

From the DAVIS frames and their ground-truth objects when that folder is present (read in place,
never copied), else from scikit-image's bundled sample images (coins cut out by thresholding, the
horse silhouette, photos as textures). Loaded once per process and resolution, then shared.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from movseg_ros.synth.config import SynthConfigError

DAVIS_FRAME_STRIDE = 10  # every 10th DAVIS frame: ~40 photos and cut-outs from the 6 sequences
COVER = 1.25  # photos are scaled to cover this multiple of the frame in both directions
CUTOUT_AREA = 0.12  # cut-outs are stored at this fraction of the frame area (drawn smaller per clip)
# scikit-image sample images that ship with the package (no download): photos used as textures
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "camera", "moon", "grass", "gravel", "brick", "coins")


@dataclass(frozen=True)
class Cutout:
    """An object cut out of a photograph: colour, coverage (uint8 0-255) and where it came from."""

    rgb: np.ndarray
    alpha: np.ndarray
    origin: str


@dataclass(frozen=True)
class TextureBank:
    """Photos (RGBA, alpha 255, each covering the frame), real cut-outs, and real outlines to texture with photos."""

    source: str  # "davis" or "skimage"
    photos: tuple[np.ndarray, ...]  # RGBA: they blend into the 4-channel canvas as they are
    cutouts: tuple[Cutout, ...]
    silhouettes: tuple[np.ndarray, ...]  # uint8 0/255 outlines of real objects


def resolve_source(source: str, davis_root: str | Path | None) -> tuple[str, Path | None]:
    """'auto' becomes 'davis' when the DAVIS folder holds sequences, else 'skimage' (looked up once per process)."""
    from movseg_ros.datasets.davis import default_root

    return _resolve(source, str(Path(davis_root) if davis_root else default_root()))


@functools.lru_cache(maxsize=16)
def _resolve(source: str, davis_root: str) -> tuple[str, Path | None]:
    root = Path(davis_root)
    has_davis = root.is_dir() and any((p / "JPEGImages").is_dir() for p in root.iterdir())
    if source == "davis" and not has_davis:
        raise SynthConfigError(f"texture_source 'davis' but no DAVIS sequences in {root}")
    if source == "skimage" or (source == "auto" and not has_davis):
        return "skimage", None
    if source in ("auto", "davis"):
        return "davis", root
    raise SynthConfigError(f"unknown texture_source '{source}'")


def load_bank(source: str, width: int, height: int, davis_root: str | Path | None = None) -> TextureBank:
    """The bank for a frame size, loaded on first use in this process and cached after."""
    kind, root = resolve_source(source, davis_root)
    return _cached_bank(kind, str(root) if root else "", int(width), int(height))


@functools.lru_cache(maxsize=4)
def _cached_bank(kind: str, root: str, width: int, height: int) -> TextureBank:
    if kind == "davis":
        return _davis_bank(Path(root), width, height)
    return _skimage_bank(width, height)


def _cover(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale an RGB photo (keeping its aspect) so it covers COVER times the frame; RGBA, opaque."""
    h, w = photo.shape[:2]
    s = max(COVER * width / w, COVER * height / h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    scaled = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return cv2.cvtColor(scaled, cv2.COLOR_RGB2RGBA)


def _cutout(rgb: np.ndarray, mask: np.ndarray, width: int, height: int, origin: str) -> Cutout | None:
    """Crop a masked object, scale it to CUTOUT_AREA of the frame, soften its edge by one pixel."""
    ys, xs = np.nonzero(mask)
    if ys.size < 200:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop_rgb = rgb[y0:y1, x0:x1]
    crop_alpha = np.where(mask[y0:y1, x0:x1], 255, 0).astype(np.uint8)
    s = min(1.0, float(np.sqrt(CUTOUT_AREA * width * height / ys.size)))
    size = (max(4, round((x1 - x0) * s)), max(4, round((y1 - y0) * s)))
    crop_rgb = cv2.resize(crop_rgb, size, interpolation=cv2.INTER_AREA)
    crop_alpha = cv2.resize(crop_alpha, size, interpolation=cv2.INTER_AREA)
    crop_alpha = cv2.copyMakeBorder(crop_alpha, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0)
    crop_rgb = cv2.copyMakeBorder(crop_rgb, 2, 2, 2, 2, cv2.BORDER_REPLICATE)
    crop_alpha = cv2.GaussianBlur(crop_alpha, (3, 3), 0)
    return Cutout(np.ascontiguousarray(crop_rgb), crop_alpha, origin)


def _main_object(mask: np.ndarray) -> np.ndarray:
    """The mask's largest connected part, holes filled; empty when the object is in pieces (occluded:
    the largest part holds less than 85 % of the mask)."""
    from scipy.ndimage import binary_fill_holes

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    if n <= 1:
        return np.zeros_like(mask, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(np.argmax(areas))
    if areas[largest] < 0.85 * areas.sum():
        return np.zeros_like(mask, bool)
    return binary_fill_holes(labels == largest + 1)


def _touches_border(mask: np.ndarray, limit: int = 20) -> bool:
    """True when the object is cut by the image edge (more than `limit` pixels on it)."""
    edge = int(mask[0].sum() + mask[-1].sum() + mask[:, 0].sum() + mask[:, -1].sum())
    return edge > limit


def _davis_bank(root: Path, width: int, height: int) -> TextureBank:
    from movseg_ros.datasets.davis import find_sequences

    photos: list[np.ndarray] = []
    cutouts: list[Cutout] = []
    for seq in find_sequences(root):
        for i in range(0, len(seq), DAVIS_FRAME_STRIDE):
            rgb = seq.image(i)
            photos.append(_cover(rgb, width, height))
            if i in seq.annotated:
                mask = _main_object(seq.binary(i))
                if mask.any() and not _touches_border(mask):
                    c = _cutout(rgb, mask, width, height, f"davis:{seq.name}/{i:05d}")
                    if c is not None:
                        cutouts.append(c)
    if not photos:
        raise SynthConfigError(f"no DAVIS frames under {root}")
    silhouettes = tuple(c.alpha for c in cutouts[::3])  # DAVIS outlines also carry other photos' textures
    return TextureBank("davis", tuple(photos), tuple(cutouts), silhouettes)


def _skimage_bank(width: int, height: int) -> TextureBank:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import skimage.data as data
        from skimage.filters import threshold_otsu

        raw = {name: getattr(data, name)() for name in SKIMAGE_PHOTOS}
        horse = ~data.horse()
    photos = []
    for name in SKIMAGE_PHOTOS:
        img = raw[name]
        rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img[..., :3]
        photos.append(_cover(np.ascontiguousarray(rgb), width, height))
    cutouts = []
    coins = raw["coins"]
    coin_mask = coins > threshold_otsu(coins)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(coin_mask.astype(np.uint8))
    coins_rgb = cv2.cvtColor(coins, cv2.COLOR_GRAY2RGB)
    for k in range(1, n):
        if 800 <= stats[k, cv2.CC_STAT_AREA] <= 4000:
            c = _cutout(coins_rgb, _main_object(labels == k), width, height, f"skimage:coins/{k}")
            if c is not None:
                cutouts.append(c)
    horse_alpha = np.where(horse, 255, 0).astype(np.uint8)
    ys, xs = np.nonzero(horse)
    horse_alpha = horse_alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return TextureBank("skimage", tuple(photos), tuple(cutouts), (horse_alpha, cv2.flip(horse_alpha, 1)))
