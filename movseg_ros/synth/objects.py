"""Objects as sprites: one or more parts (RGBA images) in the object's own frame, limbs that swing.

An object's frame has its origin at the object's centre; a part's pixel (col, row) sits at
offset + (col, row). A limb turns about its joint by swing * sin(rate * progress + phase), where
progress counts the frames the object has moved so far, so a still object's limbs are still too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from movseg_ros.synth.config import SynthConfig
from movseg_ros.synth.textures import TextureBank

SUBPIXEL = 16  # fillPoly works in 1/16 pixel (shift=4)


@dataclass(frozen=True)
class Part:
    """One rigid piece of an object: its picture, where it sits, and how it swings about its joint."""

    rgba: np.ndarray  # h, w, 4 uint8
    offset: tuple[float, float]  # object coordinates of pixel (0, 0)
    pivot: tuple[float, float]  # joint, object coordinates
    swing: float = 0.0  # radians (0: the body, which does not swing)
    rate: float = 0.0  # phase advance per frame moved, radians
    phase: float = 0.0
    rank: int = 1  # drawing order inside the object: limbs (0) behind the body (1)

    def to_object(self, progress: float) -> np.ndarray:
        """3x3 map from the part's pixels to object coordinates after `progress` frames of motion."""
        angle = self.swing * math.sin(self.rate * progress + self.phase) if self.swing else 0.0
        c, s = math.cos(angle), math.sin(angle)
        px, py = self.pivot
        rot = np.array([[c, -s, px - c * px + s * py], [s, c, py - s * px - c * py], [0.0, 0.0, 1.0]])
        return rot @ np.array([[1.0, 0.0, self.offset[0]], [0.0, 1.0, self.offset[1]], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class ObjectModel:
    """The parts of one object and where its look came from."""

    parts: tuple[Part, ...]
    kind: str  # "cutout:<origin>", "silhouette" or "outline"


def blob_outline(rng: np.random.Generator, area: float, aspect: float) -> np.ndarray:
    """A closed non-convex outline (Nx2, centred at 0) of the given area: a circle with harmonics."""
    theta = np.linspace(0.0, 2.0 * math.pi, 180, endpoint=False)
    radius = np.ones_like(theta)
    for k, top in ((2, 0.25), (3, 0.3), (4, 0.15), (5, 0.12)):
        radius += rng.uniform(0.0, top) * np.cos(k * theta + rng.uniform(0.0, 2.0 * math.pi))
    radius = np.maximum(radius, 0.25)
    pts = np.stack([aspect * radius * np.cos(theta), radius * np.sin(theta) / aspect], axis=1)
    return pts * math.sqrt(area / _polygon_area(pts))


def make_object(rng: np.random.Generator, bank: TextureBank, config: SynthConfig, area: float) -> ObjectModel:
    """An object of about `area` pixels: a real cut-out, or a real outline or a procedural one textured
    with a photo; with limbs when drawn so."""
    with_limbs = rng.random() < config.parts_probability
    roll = rng.random()
    if roll < config.cutout_probability and bank.cutouts:
        cut = bank.cutouts[int(rng.integers(len(bank.cutouts)))]
        rgb, alpha = _scaled(cut.rgb, cut.alpha, area)
        kind = f"cutout:{cut.origin}"
    elif roll < config.cutout_probability + 0.5 * (1.0 - config.cutout_probability) and bank.silhouettes:
        sil = bank.silhouettes[int(rng.integers(len(bank.silhouettes)))]
        _, alpha = _scaled(None, sil, area)
        rgb = _tinted(rng, photo_patch(rng, bank, alpha.shape[1], alpha.shape[0]))
        kind = "silhouette"
    else:
        outline = blob_outline(rng, area, math.exp(rng.uniform(-0.4, 0.4)))
        rgb, alpha, offset = _outline_sprite(rng, bank, outline)
        body = Part(_rgba(rgb, alpha), offset, (0.0, 0.0))
        limbs = _attached_limbs(rng, bank, config, outline, rgb) if with_limbs else ()
        return ObjectModel((*limbs, body), "outline")
    offset = (-alpha.shape[1] / 2.0, -alpha.shape[0] / 2.0)
    if with_limbs:
        return ObjectModel(_split_limb(rng, config, rgb, alpha, offset), kind)
    return ObjectModel((Part(_rgba(rgb, alpha), offset, (0.0, 0.0)),), kind)


def photo_patch(rng: np.random.Generator, bank: TextureBank, width: int, height: int) -> np.ndarray:
    """A width x height RGBA (opaque) piece of a random photo, at a random scale (0.6-1.4) and place."""
    photo = bank.photos[int(rng.integers(len(bank.photos)))]
    ph, pw = photo.shape[:2]
    scale = max(rng.uniform(0.6, 1.4), width / pw, height / ph)  # the crop fits in the photo, aspect kept
    cw, ch = min(pw, max(2, round(width / scale))), min(ph, max(2, round(height / scale)))
    x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    return cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], (width, height), interpolation=cv2.INTER_LINEAR)


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colour (RGB or RGBA, whose alpha is replaced) with the given coverage."""
    return cv2.merge([rgb[..., 0], rgb[..., 1], rgb[..., 2], alpha])


def _tinted(rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
    """A photo patch with a random colour gain, so an object differs from the background it was cut from."""
    gain = np.ones(patch.shape[2], np.float32)
    gain[:3] = rng.uniform(0.8, 1.2, 3)
    return cv2.convertScaleAbs(patch.astype(np.float32) * gain)


def _scaled(rgb: np.ndarray | None, alpha: np.ndarray, area: float) -> tuple[np.ndarray | None, np.ndarray]:
    """Resize a cut-out (or an outline alone) so its covered area is about `area` pixels."""
    covered = max(1.0, float(np.count_nonzero(alpha > 127)))
    s = math.sqrt(area / covered)
    h, w = alpha.shape
    size = (max(4, round(w * s)), max(4, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return (None if rgb is None else cv2.resize(rgb, size, interpolation=interp)), cv2.resize(alpha, size,
                                                                                              interpolation=interp)


def _fill(outline: np.ndarray, offset: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased coverage (uint8) of a polygon given in object coordinates, in a w x h sprite at offset."""
    alpha = np.zeros((size[1], size[0]), np.uint8)
    pts = np.round((outline - offset) * SUBPIXEL).astype(np.int32)
    cv2.fillPoly(alpha, [pts], 255, cv2.LINE_AA, shift=4)
    return alpha


def _outline_sprite(
    rng: np.random.Generator, bank: TextureBank, outline: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    lo, hi = np.floor(outline.min(axis=0)) - 2.0, np.ceil(outline.max(axis=0)) + 2.0
    size = (int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
    alpha = _fill(outline, lo, size)
    rgb = _tinted(rng, photo_patch(rng, bank, size[0], size[1]))
    return rgb, alpha, (float(lo[0]), float(lo[1]))


def _attached_limbs(
    rng: np.random.Generator, bank: TextureBank, config: SynthConfig, outline: np.ndarray, body_rgb: np.ndarray
) -> tuple[Part, ...]:
    """1-2 elongated limbs jointed on the body's outline, pointing outward, a quarter tucked under it."""
    reach = float(np.linalg.norm(outline, axis=1).mean())
    limbs = []
    for _ in range(int(rng.integers(1, 3))):
        joint = outline[int(rng.integers(len(outline)))]
        direction = joint / max(1e-6, float(np.linalg.norm(joint)))
        length = reach * rng.uniform(0.6, 1.1)
        half_width = 0.5 * length * rng.uniform(0.2, 0.35)
        t = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)
        along, across = 0.5 * length * np.cos(t), half_width * np.sin(t) * (1.0 + 0.15 * np.cos(3 * t))
        normal = np.array([-direction[1], direction[0]])
        centre = joint + direction * 0.25 * length
        shape = centre + along[:, None] * direction + across[:, None] * normal
        lo, hi = np.floor(shape.min(axis=0)) - 2.0, np.ceil(shape.max(axis=0)) + 2.0
        size = (int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
        alpha = _fill(shape, lo, size)
        rgb = _tinted(rng, photo_patch(rng, bank, size[0], size[1])) if rng.random() < 0.5 else \
            cv2.resize(body_rgb, size, interpolation=cv2.INTER_LINEAR)
        limbs.append(Part(_rgba(rgb, alpha), (float(lo[0]), float(lo[1])), (float(joint[0]), float(joint[1])),
                          *_swing(rng, config), rank=0))
    return tuple(limbs)


def _split_limb(
    rng: np.random.Generator, config: SynthConfig, rgb: np.ndarray, alpha: np.ndarray, offset: tuple[float, float]
) -> tuple[Part, ...]:
    """Cut a real object in two across a random direction: the far ~30 % becomes a limb jointed at the cut."""
    h, w = alpha.shape
    ys, xs = np.nonzero(alpha > 127)
    if ys.size < 50:
        return (Part(_rgba(rgb, alpha), offset, (0.0, 0.0)),)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    u = np.array([math.cos(angle), math.sin(angle)])
    proj = xs * u[0] + ys * u[1]
    cut = float(np.quantile(proj, rng.uniform(0.65, 0.8)))
    near = np.abs(proj - cut) < 1.5
    joint = (float(xs[near].mean() + offset[0]), float(ys[near].mean() + offset[1])) if near.any() else (0.0, 0.0)
    yy, xx = np.mgrid[0:h, 0:w]
    side = xx * u[0] + yy * u[1]
    body_alpha = np.where(side <= cut, alpha, 0).astype(np.uint8)
    limb_alpha = np.where(side > cut - 3.0, alpha, 0).astype(np.uint8)  # 3 px tucked under the body
    body = Part(_rgba(rgb, body_alpha), offset, (0.0, 0.0))
    swing, rate, _ = _swing(rng, config)  # phase 0: the limb starts where it was cut, then swings
    limb = Part(_rgba(rgb, limb_alpha), offset, joint, swing, rate, 0.0, rank=0)
    return (_cropped(limb), _cropped(body))


def _cropped(part: Part) -> Part:
    """The part with its picture cut down to where it covers anything (less to warp per frame)."""
    ys, xs = np.nonzero(part.rgba[..., 3])
    if ys.size == 0:
        return part
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Part(np.ascontiguousarray(part.rgba[y0:y1, x0:x1]), (part.offset[0] + x0, part.offset[1] + y0),
                part.pivot, part.swing, part.rate, part.phase, part.rank)


def _swing(rng: np.random.Generator, config: SynthConfig) -> tuple[float, float, float]:
    swing = math.radians(rng.uniform(*config.limb_swing_deg)) * (1 if rng.random() < 0.5 else -1)
    return swing, rng.uniform(*config.limb_rate), rng.uniform(0.0, 2.0 * math.pi)
