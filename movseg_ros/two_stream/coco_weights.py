"""torchvision's COCO-pretrained Mask R-CNN (R-50-FPN, 91 classes) as seed 000's one-class objectness model.

The conversion keeps every weight except the three class-specific predictor layers, whose rows are
per class: cls_score (1 row per class), bbox_pred (4 rows per class), mask_fcn_logits (1 row per class).
For each, the background rows (class 0) stay and the single "object" rows become the mean over the
foreground classes (all of 1..90 by default) of their rows; the object logit's bias also gets + log(K)
for K averaged classes, so that where the K class logits agree the object logit equals their
log-sum-exp (the classifier's "any object" logit) instead of one class's. BatchNorm's `num_batches_tracked` counters
(present when a file was saved from a model with ordinary batch norm) are dropped: frozen BN has none.

Note: torchvision trained the RPN for anchors 32..512 px on images resized to 800 px; our paper() arch
has anchors 16..256 (same 3 per location, so the shapes fit) at min_size 240, so the RPN's box deltas
start out relative to anchors half the size they were learned for, until fine-tuned.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torchvision.models.detection import MaskRCNN, MaskRCNN_ResNet50_FPN_Weights

from movseg_ros.model_files import ModelFileError, load_checkpoint, load_into
from movseg_ros.two_stream.arch import DetectorArch, arch_name
from movseg_ros.two_stream.models import build_single_stream

# the class-specific predictor layers -> rows each class has in them
CLASS_LAYERS = {
    "roi_heads.box_predictor.cls_score": 1,
    "roi_heads.box_predictor.bbox_pred": 4,
    "roi_heads.mask_predictor.mask_fcn_logits": 1,
}
COCO_SOURCE = "torchvision maskrcnn_resnet50_fpn (COCO)"
TARGET = "R-50-FPN objectness, torchvision maskrcnn_resnet50_fpn layout"  # words load errors


def named_coco_classes() -> list[int]:
    """Indices of the 80 real COCO categories among torchvision's 91 (not background, not the "N/A" gaps)."""
    names = MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    return [i for i, name in enumerate(names) if i > 0 and name != "N/A"]


def objectness_from_coco(state: dict[str, Tensor], path: Path | str,
                         classes: Sequence[int] | None = None) -> dict[str, Tensor]:
    """A multi-class Mask R-CNN state dict -> the one-class ("object") state dict of our appearance model.

    Background rows stay; each object row is the mean of the foreground classes' rows (`classes`, default
    all of 1..C-1) in cls_score (bias + log K), bbox_pred (4 rows per class) and mask_fcn_logits; everything else is copied,
    minus BatchNorm's num_batches_tracked. ModelFileError (naming `path`) when the predictor layers are
    missing (not a Mask R-CNN) or their class counts disagree.
    """
    n_classes = _class_count(state, path)
    foreground = list(range(1, n_classes)) if classes is None else [int(c) for c in classes]
    bad = [c for c in foreground if not 1 <= c < n_classes]
    if not foreground or bad or len(set(foreground)) != len(foreground):
        raise ModelFileError(path, f"foreground classes to average must be distinct indices in 1..{n_classes - 1} "
                                   f"(the file has {n_classes} classes), got {list(classes or [])}")
    out = {k: v for k, v in state.items() if not k.endswith(".num_batches_tracked")}
    for layer, rows in CLASS_LAYERS.items():
        for part in ("weight", "bias"):
            key = f"{layer}.{part}"
            value = state[key]
            per_class = value.float().reshape(n_classes, rows, *value.shape[1:])
            merged = torch.cat([per_class[0], per_class[foreground].mean(0)], 0)
            if key == "roi_heads.box_predictor.cls_score.bias":
                merged[1] += math.log(len(foreground))  # mean logit + log K = log-sum-exp of K equal logits
            out[key] = merged.to(value.dtype)
    return out


def load_coco_objectness(path: Path | str, min_size: int = 240,
                         classes: Sequence[int] | None = None) -> MaskRCNN:
    """torchvision's published maskrcnn_resnet50_fpn COCO file (a plain state dict) as our paper()
    appearance model with one "object" class, in eval mode on the CPU (see objectness_from_coco).

    ModelFileError names the file for: no such file, unreadable or truncated, a movseg checkpoint
    instead of a plain state dict, not a Mask R-CNN, or another backbone / head layout (e.g. ResNet-101).
    """
    ckpt = load_checkpoint(path, arch_name("appearance"))
    if ckpt["arch"] is not None:
        raise ModelFileError(path, "is a movseg appearance checkpoint (already one object class), not torchvision's "
                                   "COCO weights; load it with movseg_ros.two_stream.weights.load_model")
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    model = build_single_stream(DetectorArch.paper(), "appearance", min_size=min_size)
    load_into(model, objectness_from_coco(state, path, classes), path, TARGET)
    model.eval()
    return model


def _class_count(state: dict[str, Tensor], path: Path | str) -> int:
    """The number of classes (background included) the predictor layers agree on."""
    keys = [f"{layer}.{part}" for layer in CLASS_LAYERS for part in ("weight", "bias")]
    missing = [k for k in keys if k not in state]
    if missing:
        raise ModelFileError(path, f"not a Mask R-CNN state dict (like {COCO_SOURCE}): no {', '.join(missing)}")
    n_classes = state["roi_heads.box_predictor.cls_score.weight"].shape[0]
    for layer, rows in CLASS_LAYERS.items():
        for part in ("weight", "bias"):
            shape = tuple(state[f"{layer}.{part}"].shape)
            if not shape or shape[0] != rows * n_classes:
                raise ModelFileError(path, f"{layer}.{part} has shape {shape}, expected {rows * n_classes} rows "
                                           f"({rows} per class for the {n_classes} classes of cls_score)")
    if n_classes < 2:
        raise ModelFileError(path, f"the predictor has {n_classes} class(es); need background and at least one more")
    return n_classes
