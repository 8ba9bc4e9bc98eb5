"""Synthetic objectness data in the COCO instances format (seed 000 §3: one class "object").

Image i is frame 0 of the 2-frame clip of seed base_seed + i; every visible instance with at least
`min_pixels` pixels is annotated, moving or static, with an RLE mask and an extra field "moving".
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from movseg_ros.synth.clip import Clip, generate_clip
from movseg_ros.synth.config import SynthConfig, SynthConfigError

CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}


def image_name(seed: int) -> str:
    """File name (under images/) of the image made from clip `seed`."""
    return f"{seed:06d}.png"


def write_coco(config: SynthConfig, out: Path | str, images: int, base_seed: int = 0, min_pixels: int = 16,
               progress: bool = False) -> Path:
    """Write out/images/<seed>.png and out/annotations.json; returns the annotations file.

    Image ids are the clips' seeds; annotation ids count from 1. A tqdm bar on stderr when `progress`.
    """
    _check(images, base_seed, min_pixels)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    config2 = config.replace(frames=2)
    entries: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    seeds = range(base_seed, base_seed + images)
    for seed in tqdm(seeds, desc="synth coco", unit="image", file=sys.stderr, disable=not progress or None):
        clip = generate_clip(config2, seed)
        name = image_name(seed)
        path = out / "images" / name
        if not cv2.imwrite(str(path), cv2.cvtColor(clip.images[0], cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
        entries.append({"id": seed, "file_name": name, "width": config.width, "height": config.height})
        annotations += frame_annotations(clip, seed, len(annotations) + 1, min_pixels)
    coco = {"info": {"description": "movseg synthetic objectness data: frame 0 of each clip, every visible "
                                    "instance one 'object'; 'moving' tells whether it moves at that frame",
                     "base_seed": base_seed, "min_pixels": min_pixels, "config": config2.to_dict()},
            "images": entries, "annotations": annotations, "categories": [dict(CATEGORY)]}
    target = out / "annotations.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(coco))
    tmp.replace(target)
    return target


def frame_annotations(clip: Clip, image_id: int, first_id: int, min_pixels: int = 16, t: int = 0) -> list[dict[str, Any]]:
    """COCO annotations (RLE masks, nearest first) of frame t's visible instances of >= min_pixels pixels."""
    from pycocotools import mask as mask_utils

    anns = []
    for oid in clip.depth_order(t):
        mask = clip.instances[t] == oid
        if np.count_nonzero(mask) < min_pixels:
            continue
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        with warnings.catch_warnings():  # pycocotools warns under numpy 2 (copy keyword)
            warnings.simplefilter("ignore", DeprecationWarning)
            area, bbox = float(mask_utils.area(rle)), [float(v) for v in mask_utils.toBbox(rle)]
        anns.append({"id": first_id + len(anns), "image_id": image_id, "category_id": CATEGORY["id"],
                     "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
                     "area": area, "bbox": bbox, "iscrowd": 0, "moving": bool(clip.moving[t, oid]),
                     "instance_id": int(oid)})
    return anns


def _check(images: int, base_seed: int, min_pixels: int) -> None:
    for name, value, low in (("images", images, 1), ("base_seed", base_seed, 0), ("min_pixels", min_pixels, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SynthConfigError(f"synth coco {name} must be an integer >= {low}, got {value!r}")
