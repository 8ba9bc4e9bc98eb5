"""A COCO instances file (COCO itself, or `movseg synth coco` output) as a torch detection Dataset.

Seed 000 §3 trains its appearance stream for objectness: every category is merged into one class
"object" (label 1) before training. Crowd regions and masks smaller than `min_area` pixels are left out;
images without a usable annotation stay in (empty targets, as background-only examples).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from movseg_ros.datasets.errors import BadImageFile, DatasetError
from movseg_ros.datasets.label_files import checked_bytes
from movseg_ros.safe_text import printable

OBJECT_LABEL = 1
IMAGE_FIELDS = ("id", "file_name", "width", "height")


class CocoInstances(Dataset):
    """Item i: {"image": (3,H,W) float [0,1] RGB, "target": {"boxes": (N,4) float xyxy, "labels": (N,) int64
    all 1, "masks": (N,H,W) uint8}, "image_id": int}, in the order of the file's "images" list.

    Boxes are the tight pixel boxes of the decoded masks (x1, y1 exclusive), so boxes and masks always agree.
    Polygon and RLE segmentations both decode (pycocotools). Images are read lazily, at item access.
    """

    def __init__(self, annotations: Path | str, images: Path | str, min_area: float = 16.0) -> None:
        self.annotations, self.images, self.min_area = Path(annotations), Path(images), float(min_area)
        if not self.min_area >= 0:
            raise DatasetError(self.annotations, f"min_area must be >= 0, got {min_area}")
        data = _read_json(self.annotations)
        self.records = _image_records(data, self.annotations)
        self.coco = _index(data)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def image_ids(self) -> list[int]:
        return [int(r["id"]) for r in self.records]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} images in {self.annotations}")
        record = self.records[index]
        image_id, height, width = int(record["id"]), int(record["height"]), int(record["width"])
        image = self._read_image(record)
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0),
                "target": _target(self._masks(image_id), height, width), "image_id": image_id}

    def _read_image(self, record: dict[str, Any]) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one image entry; grey, palette and RGBA files are converted."""
        path = self.images / str(record["file_name"])
        what = f"image id {printable(record['id'])} ('{printable(record['file_name'])}', listed in {self.annotations})"
        if not path.is_file():
            raise DatasetError(path, f"no such image file for {what}")
        try:
            data = checked_bytes(path)
        except BadImageFile as e:
            raise BadImageFile(path, f"cannot read {what}: {e.problem}") from None
        try:
            with Image.open(io.BytesIO(data)) as im:
                rgb = np.asarray(im.convert("RGB"), np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise BadImageFile(path, f"cannot read {what}: {printable(e)}") from None
        if rgb.shape[:2] != (int(record["height"]), int(record["width"])):
            raise DatasetError(path, f"{what} is {rgb.shape[1]}x{rgb.shape[0]} but the annotations say "
                                     f"{record['width']}x{record['height']}")
        return rgb

    def _masks(self, image_id: int) -> list[np.ndarray]:
        """The image's usable instance masks (not crowd, at least min_area pixels), in file order."""
        masks = []
        for ann in self.coco.imgToAnns.get(image_id, []):
            if ann.get("iscrowd", 0):
                continue
            if not ann.get("segmentation"):
                raise DatasetError(self.annotations, f"annotation {ann.get('id')} of image {image_id} has no "
                                                     f"'segmentation' (instance masks are needed)")
            try:
                with warnings.catch_warnings():  # pycocotools' decode warns under numpy 2 (copy keyword)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    mask = self.coco.annToMask(ann)
            except (TypeError, ValueError, KeyError, IndexError) as e:
                raise DatasetError(self.annotations, f"annotation {ann.get('id')} of image {image_id}: cannot "
                                                     f"decode its segmentation ({type(e).__name__}: {e})") from None
            if np.count_nonzero(mask) >= max(self.min_area, 1.0):
                masks.append(mask.astype(np.uint8))
        return masks


def collate_detection(items: list[dict[str, Any]]) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """A batch as torchvision detectors take it: (list of images, list of targets); sizes may differ."""
    return [item["image"] for item in items], [item["target"] for item in items]


def _target(masks: list[np.ndarray], height: int, width: int) -> dict[str, Tensor]:
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    stacked = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.full((len(masks),), OBJECT_LABEL, dtype=torch.int64),
            "masks": torch.from_numpy(stacked)}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(path, "no such annotations file" if not path.exists() else "annotations path is not a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"annotations file is not JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DatasetError(path, "not a COCO instances file: needs 'images' and 'annotations' lists")
    return data


def _image_records(data: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The "images" entries, checked for the fields an item needs and for unique ids."""
    seen: set[int] = set()
    for k, record in enumerate(data["images"]):
        missing = [f for f in IMAGE_FIELDS if not isinstance(record, dict) or f not in record]
        if missing:
            raise DatasetError(path, f"images[{k}] lacks {', '.join(missing)}")
        if not isinstance(record["id"], int):
            raise DatasetError(path, f"images[{k}] has id {record['id']!r}; COCO image ids are integers")
        if record["id"] in seen:
            raise DatasetError(path, f"image id {record['id']} is listed twice")
        if not all(isinstance(record[f], int) and record[f] > 0 for f in ("width", "height")):
            raise DatasetError(path, f"image id {record['id']}: width/height must be positive integers, "
                                     f"got {record['width']!r}x{record['height']!r}")
        seen.add(record["id"])
    return list(data["images"])


def _index(data: dict[str, Any]) -> Any:
    """pycocotools' COCO over the parsed file (its progress lines kept off stdout)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
    return coco
