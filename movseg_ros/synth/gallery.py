"""A picture of a clip for a person: per frame the image, its flow, its instance ids, its moving flags."""

from __future__ import annotations

import cv2
import numpy as np

from movseg_ros.flow import flow_to_image
from movseg_ros.overlay import contact_sheet
from movseg_ros.synth.clip import Clip
from movseg_ros.datasets.label_files import davis_palette

MOVING_COLOUR = (255, 40, 40)
STILL_COLOUR = (60, 140, 255)


def flow_colour(flow: np.ndarray, max_magnitude: float) -> np.ndarray:
    """Flow as colour: hue = direction, brightness = speed (from flow_to_image's angle/magnitude)."""
    enc = flow_to_image(flow, max_magnitude)
    hsv = np.dstack([(enc[..., 0].astype(np.uint16) * 180 // 256).astype(np.uint8),
                     np.full(enc.shape[:2], 255, np.uint8), enc[..., 1]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def instance_colour(ids: np.ndarray) -> np.ndarray:
    """Ids in the DAVIS palette colours."""
    return davis_palette()[np.clip(ids, 0, 255)]


def moving_view(clip: Clip, t: int) -> np.ndarray:
    """The frame darkened; moving objects tinted red and outlined, still ones outlined blue; id + M/S."""
    image = (clip.images[t] * 0.45).astype(np.uint8)
    for oid in clip.ids:
        mask = clip.instances[t] == oid
        if not mask.any():
            continue
        moving = bool(clip.moving[t, oid])
        colour = MOVING_COLOUR if moving else STILL_COLOUR
        if moving:
            image[mask] = (0.5 * clip.images[t][mask] + 0.5 * np.array(colour)).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, colour, 2)
        ys, xs = np.nonzero(mask)
        text = f"{oid}{'M' if moving else 'S'}" + ("*" if oid in clip.static_ids else "")
        cv2.putText(image, text, (int(xs.mean()) - 8, int(ys.mean()) + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return image


def gallery(clip: Clip, rows: int = 6, width: int = 1280) -> np.ndarray:
    """Up to `rows` evenly spaced frames, four pictures each (RGB, flow, ids, moving flags), captioned."""
    if rows < 1:
        raise ValueError(f"gallery rows must be >= 1, got {rows}")
    frames = clip.images.shape[0]
    picks = sorted(set(np.linspace(0, frames - 1, min(rows, frames)).round().astype(int).tolist()))
    top = max(1e-6, float(np.percentile(np.linalg.norm(clip.flow, axis=-1), 99.5)))
    pictures, captions = [], []
    for t in picks:
        if t < frames - 1:
            flow, flow_caption = flow_colour(clip.flow[t], top), f"flow {t}->{t + 1} (max {top:.1f}px)"
        else:
            flow, flow_caption = np.zeros_like(clip.images[t]), "no flow (last frame)"
        pictures += [clip.images[t], flow, instance_colour(clip.instances[t]), moving_view(clip, t)]
        movers = ",".join(map(str, clip.moving_ids(t))) or "-"
        captions += [f"t={t} seed {clip.seed}", flow_caption, f"ids {clip.depth_order(t)} near->far",
                     f"moving {movers}; *=static obj"]
    return contact_sheet(pictures, 4, width, captions)
