"""Layered rendering and its exact flow.

Every visible thing is a surface: a picture (RGBA) with a per-frame 3x3 map to image pixels.
Frames are painted back to front (far to near, limbs under bodies), alpha-blended, and each pixel
remembers the surface that covers it (alpha > 1/2). The forward flow at a pixel is then exact:
the point of that surface seen there moves by  M_{t+1} M_t^-1 x - x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MAX_SURFACES = 255  # surface labels are uint8


@dataclass(frozen=True)
class Surface:
    """A picture and where it lands in each frame."""

    rgba: np.ndarray  # h, w, 4 uint8 (the far layer may be h, w, 3: it covers everything)
    to_image: np.ndarray  # (T+1, 3, 3) picture pixels -> image pixels
    instance: int  # 0 for background layers
    depth: float
    rank: int = 1  # inside one depth: lower is painted first
    covers_all: bool = False  # the far background, mirrored beyond its edges


@dataclass
class FrameRender:
    """One painted frame and the surface label of every pixel (index into the surface list)."""

    rgb: np.ndarray  # H, W, 3 uint8
    label: np.ndarray  # H, W uint8


def paint_order(surfaces: list[Surface]) -> list[Surface]:
    """Back to front: deeper first, then by rank; the (one) full-cover surface first of all."""
    return sorted(surfaces, key=lambda s: (not s.covers_all, -s.depth, s.rank))


def render_frame(surfaces: list[Surface], t: int, width: int, height: int) -> FrameRender:
    """Paint frame t from surfaces already in paint order; surfaces[0] must cover the frame."""
    if len(surfaces) > MAX_SURFACES:
        raise ValueError(f"at most {MAX_SURFACES} surfaces, got {len(surfaces)}")
    far = surfaces[0]
    if not far.covers_all:
        raise ValueError("the first surface must be the full-cover background")
    # a 4-channel canvas so RGBA pictures blend in without splitting channels (its 4th channel is unused)
    canvas = _warp(far.rgba, far.to_image[t], (width, height), cv2.BORDER_REFLECT)
    if canvas.shape[2] == 3:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_RGB2RGBA)
    label = np.zeros((height, width), np.uint8)
    for k, surface in enumerate(surfaces[1:], start=1):
        m = surface.to_image[t]
        box = _footprint(m, surface.rgba.shape, width, height)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        shifted = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ m
        warped = _warp(surface.rgba, shifted, (x1 - x0, y1 - y0), cv2.BORDER_CONSTANT)
        alpha = warped[..., 3]
        cover = alpha > 127
        weight = alpha.astype(np.float32)
        roi = canvas[y0:y1, x0:x1]
        roi[...] = cv2.blendLinear(warped, roi, weight, 255.0 - weight)
        np.copyto(label[y0:y1, x0:x1], np.uint8(k), where=cover)
    return FrameRender(cv2.cvtColor(canvas, cv2.COLOR_RGBA2RGB), label)


def flow_matrices(surfaces: list[Surface], t: int) -> np.ndarray:
    """(S, 3, 3): for each surface, the map of frame t's pixels to frame t+1's (M_{t+1} M_t^-1)."""
    out = np.empty((len(surfaces), 3, 3))
    for k, s in enumerate(surfaces):
        out[k] = s.to_image[t + 1] @ np.linalg.inv(s.to_image[t])
    return out


def exact_flow(label: np.ndarray, matrices: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Forward flow (H, W, 2 float32): each pixel moved by the map of the surface that covers it.

    The map's nine coefficients are looked up per pixel through 256-entry tables (cv2.LUT); the
    division is skipped when every map is affine.
    """
    xs, ys = grid
    table = np.zeros((9, 256), np.float32)
    table[:, : len(matrices)] = matrices.reshape(-1, 9).T
    table[0] -= 1.0  # u = (a0 - 1) x + a1 y + a2 when affine
    table[4] -= 1.0
    coef = [cv2.LUT(label, table[i]) for i in range(6)]
    u = coef[0] * xs + coef[1] * ys + coef[2]
    v = coef[3] * xs + coef[4] * ys + coef[5]
    if np.any(np.abs(matrices[:, 2] - (0.0, 0.0, 1.0)) > 1e-12):
        den = cv2.LUT(label, table[6]) * xs + cv2.LUT(label, table[7]) * ys + cv2.LUT(label, table[8])
        u = (u + xs) / den - xs  # x' = (a0 x + a1 y + a2) / den
        v = (v + ys) / den - ys
    return cv2.merge([u, v])


def pixel_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), each H x W float32 (OpenCV convention: centre of (0, 0) is 0, 0)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def _warp(picture: np.ndarray, m: np.ndarray, size: tuple[int, int], border: int) -> np.ndarray:
    if abs(m[2, 0]) < 1e-12 and abs(m[2, 1]) < 1e-12:
        return cv2.warpAffine(picture, m[:2] / m[2, 2], size, flags=cv2.INTER_LINEAR, borderMode=border)
    return cv2.warpPerspective(picture, m, size, flags=cv2.INTER_LINEAR, borderMode=border)


def _footprint(m: np.ndarray, shape: tuple[int, ...], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1) the picture lands in, clipped to the frame; None when off-frame."""
    h, w = shape[:2]
    px, py = [], []
    for cx, cy in ((-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5)):
        z = m[2, 0] * cx + m[2, 1] * cy + m[2, 2]
        if z <= 1e-6:
            return 0, 0, width, height  # (never in practice) the picture reaches behind the camera: paint it all
        px.append((m[0, 0] * cx + m[0, 1] * cy + m[0, 2]) / z)
        py.append((m[1, 0] * cx + m[1, 1] * cy + m[1, 2]) / z)
    x0, y0 = max(0, math.floor(min(px)) - 1), max(0, math.floor(min(py)) - 1)
    x1, y1 = min(width, math.ceil(max(px)) + 2), min(height, math.ceil(max(py)) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1
