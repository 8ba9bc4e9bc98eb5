"""Detection and segmentation mean average precision at one IoU threshold (seed 000 §5.3: "Det @ 0.5",
"Seg @ 0.5"), computed by pycocotools' COCOeval on datasets built in memory.

COCO-style AP: precision interpolated (monotone from the right) and sampled at the 101 recall points
0, 0.01, ..., 1; a class's AP is their mean; mAP is the mean over classes that have truth. One area range
(all sizes), up to `max_detections` highest-scoring predictions per image and class.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import io
from typing import Sequence

import numpy as np

from movseg_ros.evaluation.errors import MetricInputError

KINDS = ("bbox", "segm")


@dataclass(frozen=True)
class ImageDetections:
    """One image's predictions: scores, and boxes (x0, y0, x1, y1) and/or masks (N, H, W); labels default 1."""

    scores: np.ndarray
    boxes: np.ndarray | None = None
    masks: np.ndarray | None = None
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class ImageTruth:
    """One image's true objects: boxes (x0, y0, x1, y1) and/or masks (N, H, W); labels default 1."""

    boxes: np.ndarray | None = None
    masks: np.ndarray | None = None
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class APResult:
    """mAP over the classes with truth, each class's AP, and what was scored."""

    ap: float
    per_class: dict[int, float]
    kind: str
    iou_threshold: float
    n_truth: int
    n_predictions: int
    images: int = field(default=0)

    def as_dict(self) -> dict:
        return {"mAP": self.ap, "per_class": {str(k): v for k, v in self.per_class.items()}, "kind": self.kind,
                "iou_threshold": self.iou_threshold, "truth": self.n_truth, "predictions": self.n_predictions,
                "images": self.images}


def _count(item: ImageDetections | ImageTruth, what: str) -> int:
    sizes = set()
    if isinstance(item, ImageDetections):
        sizes.add(len(np.atleast_1d(item.scores)))
    for name in ("boxes", "masks", "labels"):
        arr = getattr(item, name)
        if arr is not None:
            sizes.add(len(arr))
    if len(sizes) > 1:
        raise MetricInputError(f"{what}: scores, boxes, masks and labels differ in count {sorted(sizes)}")
    return sizes.pop() if sizes else 0


def _annotations(item: ImageDetections | ImageTruth, kind: str, what: str, image_id: int,
                 first_id: int) -> tuple[list[dict], tuple[int, int] | None]:
    """COCO annotations of one image's objects, and the image size where masks give it."""
    from pycocotools import mask as mask_utils

    n = _count(item, what)
    labels = np.ones(n, int) if item.labels is None else np.asarray(item.labels).astype(int)
    if n and labels.min() < 1:
        raise MetricInputError(f"{what}: class labels must be >= 1 (0 is background)")
    size = None
    rles: list[dict] = []
    if item.masks is not None:
        masks = np.asarray(item.masks)
        if masks.ndim != 3:
            raise MetricInputError(f"{what}: masks must be (N, H, W), got shape {masks.shape}")
        size = (int(masks.shape[1]), int(masks.shape[2]))
        rles = [mask_utils.encode(np.asfortranarray(m != 0, dtype=np.uint8)) for m in masks]
    elif kind == "segm" and n:
        raise MetricInputError(f"{what}: segmentation AP needs masks")
    if item.boxes is not None:
        boxes = np.asarray(item.boxes, dtype=float).reshape(-1, 4) if n else np.zeros((0, 4))
        if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
            raise MetricInputError(f"{what}: boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
        xywh = [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes.tolist()]
    elif rles:
        xywh = [list(map(float, mask_utils.toBbox(r))) for r in rles]
    elif n:
        raise MetricInputError(f"{what}: needs boxes or masks")
    else:
        xywh = []
    anns = []
    for k in range(n):
        ann = {"id": first_id + k, "image_id": image_id, "category_id": int(labels[k]), "iscrowd": 0,
               "bbox": xywh[k]}
        if kind == "segm":
            ann["segmentation"] = rles[k]
            ann["area"] = float(mask_utils.area(rles[k]))
        else:
            ann["area"] = float(xywh[k][2] * xywh[k][3])
        if isinstance(item, ImageDetections):
            ann["score"] = float(np.atleast_1d(item.scores)[k])
        anns.append(ann)
    return anns, size


def _coco(images: list[dict], categories: list[int], annotations: list[dict]):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        c = COCO()
        c.dataset = {"images": images, "categories": [{"id": k, "name": str(k)} for k in categories],
                     "annotations": annotations}
        c.createIndex()
    return c


def average_precision(predictions: Sequence[ImageDetections], truths: Sequence[ImageTruth], kind: str = "bbox",
                      iou_threshold: float = 0.5, max_detections: int = 100) -> APResult:
    """COCO-style mAP at one IoU threshold of boxes ("bbox") or masks ("segm") over a list of images."""
    from pycocotools.cocoeval import COCOeval

    if kind not in KINDS:
        raise MetricInputError(f"kind must be one of {KINDS}, got {kind!r}")
    if not 0 < iou_threshold < 1:
        raise MetricInputError(f"iou_threshold must be in (0, 1), got {iou_threshold}")
    if max_detections < 1:
        raise MetricInputError(f"max_detections must be >= 1, got {max_detections}")
    if len(predictions) != len(truths):
        raise MetricInputError(f"{len(predictions)} predicted images but {len(truths)} truth images")
    images, gt_anns, dt_anns = [], [], []
    for i, (pred, truth) in enumerate(zip(predictions, truths)):
        g, g_size = _annotations(truth, kind, f"truth image {i}", i + 1, len(gt_anns) + 1)
        d, d_size = _annotations(pred, kind, f"prediction image {i}", i + 1, len(dt_anns) + 1)
        if g_size and d_size and g_size != d_size:
            raise MetricInputError(f"image {i}: prediction masks {d_size} and truth masks {g_size} differ in size")
        h, w = g_size or d_size or (0, 0)
        images.append({"id": i + 1, "height": h, "width": w})
        gt_anns += g
        dt_anns += d
    categories = sorted({a["category_id"] for a in gt_anns + dt_anns}) or [1]
    gt, dt = _coco(images, categories, gt_anns), _coco(images, categories, dt_anns)
    ev = COCOeval(gt, dt, kind)
    ev.params.imgIds = [im["id"] for im in images]
    ev.params.catIds = categories
    ev.params.iouThrs = np.array([iou_threshold])
    ev.params.maxDets = [max_detections]
    ev.params.areaRng = [[0, 1e10]]
    ev.params.areaRngLbl = ["all"]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, :, 0, 0]  # (recall points, classes)
    per_class = {k: float(np.mean(precision[:, j])) for j, k in enumerate(categories)
                 if (precision[:, j] > -1).all()}
    ap = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return APResult(ap, per_class, kind, float(iou_threshold), len(gt_anns), len(dt_anns), len(images))
