"""Clips to files: the DAVIS layout (frames, palette instance annotations, binary moving masks),
Middlebury .flo flow files and a meta.json with everything else the truth holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from movseg_ros.synth.clip import Clip
from movseg_ros.synth.flo import write_flo
from movseg_ros.datasets.label_files import write_palette_png

IMAGE_FORMATS = ("jpg", "png")
ANNOTATIONS = ("instances", "moved")  # what Annotations/ holds: palette instance ids, or 0/255 masks of the moved
JPEG_QUALITY = 95


def moved_masks(clip: Clip) -> np.ndarray:
    """(T, H, W) bool: the pixels of the objects that have moved at frame t or before (the online truth of a
    binary segmenter that keeps an object after it stops, and reports none before it first moves)."""
    moved = np.logical_or.accumulate(clip.moving, axis=0)  # (T, N+1)
    return np.take_along_axis(moved, clip.instances.reshape(len(moved), -1).astype(np.int64), axis=1).reshape(
        clip.instances.shape)


def clip_meta(clip: Clip, name: str) -> dict[str, Any]:
    """The clip's truth other than pixels, as plain JSON types."""
    frames = clip.images.shape[0]
    return {
        "name": name,
        "seed": clip.seed,
        "frames": frames,
        "width": int(clip.images.shape[2]),
        "height": int(clip.images.shape[1]),
        "ids": clip.ids,
        "static_ids": list(clip.static_ids),
        "events": {str(i): e for i, e in clip.events.items()},
        "event_frames": {str(i): f for i, f in clip.event_frames.items()},
        "kinds": {str(i): k for i, k in clip.kinds.items()},
        "moving": {str(i): clip.moving[:, i].tolist() for i in clip.ids},
        "moving_definition": "moving[id][t]: the object's world pose changes between frame t and t+1",
        "depth": {str(i): round(float(clip.depth[i]), 4) for i in range(clip.n_instances + 1)},
        "depth_order": [clip.depth_order(t) for t in range(frames)],
        "flow": "Flow/<t>.flo: forward flow frame t -> t+1 in pixels (x, y); T-1 files",
        "camera": {"homographies": np.round(clip.camera.homographies, 9).tolist(),
                   "translations": np.round(clip.camera.translations, 6).tolist(),
                   "model": "frame t sees world point p of a layer at depth d at H_t (p - c_t / d)"},
        "texture_source": clip.texture_source,
        "exposure": clip.exposure,
        "noise_sigma": clip.noise_sigma,
        "gains": np.round(clip.gains, 6).tolist(),
        "config": clip.config.to_dict(),
    }


def write_davis_layout(clip: Clip, folder: str | Path, name: str, image_format: str = "jpg",
                       annotations: str = "instances") -> Path:
    """Write <folder>/<name>/{JPEGImages, Annotations, AnnotationsMoving, Flow}/ and meta.json; the sequence folder.

    Annotations are 8-bit palette PNGs of instance ids (DAVIS 2017 style), or with annotations="moved" 0/255
    masks of the objects that have moved by that frame (a binary DAVIS-2016-style set: `moved_masks`);
    AnnotationsMoving are 0/255 masks of the objects moving at that frame (DAVIS 2016 style).
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format '{image_format}' is not one of {', '.join(IMAGE_FORMATS)}")
    if annotations not in ANNOTATIONS:
        raise ValueError(f"annotations '{annotations}' is not one of {', '.join(ANNOTATIONS)}")
    if clip.n_instances > 255:
        raise ValueError(f"{name}: {clip.n_instances} instances do not fit 8-bit annotations")
    root = Path(folder) / name
    dirs = {k: root / k for k in ("JPEGImages", "Annotations", "AnnotationsMoving", "Flow")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if image_format == "jpg" else []
    moved = moved_masks(clip) if annotations == "moved" else None
    for t in range(clip.images.shape[0]):
        stem = f"{t:05d}"
        path = dirs["JPEGImages"] / f"{stem}.{image_format}"
        if not cv2.imwrite(str(path), cv2.cvtColor(clip.images[t], cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {path}")
        if moved is None:
            write_palette_png(dirs["Annotations"] / f"{stem}.png", clip.instances[t].astype(np.uint8))
        elif not cv2.imwrite(str(dirs["Annotations"] / f"{stem}.png"), moved[t].astype(np.uint8) * 255):
            raise OSError(f"could not write {dirs['Annotations'] / f'{stem}.png'}")
        moving = np.isin(clip.instances[t], clip.moving_ids(t)).astype(np.uint8) * 255
        path = dirs["AnnotationsMoving"] / f"{stem}.png"
        if not cv2.imwrite(str(path), moving):
            raise OSError(f"could not write {path}")
        if t < clip.flow.shape[0]:
            write_flo(dirs["Flow"] / f"{stem}.flo", clip.flow[t])
    (root / "meta.json").write_text(json.dumps(clip_meta(clip, name), indent=1))
    return root
