"""Detection and mask mAP@0.5 of a seed-000 model on items with targets (seed 000's "Det @ 0.5", "Seg @ 0.5")."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from movseg_ros.evaluation.detection_map import ImageDetections, ImageTruth, average_precision

MASK_THRESHOLD = 0.5  # torchvision's mask probabilities -> binary masks


@torch.no_grad()
def predict(model: nn.Module, inputs: list[Tensor], device: torch.device | str = "cpu") -> list[dict[str, Tensor]]:
    """Per input, torchvision's {"boxes", "scores", "masks" (N,H,W bool)}; a two-stream model's moving detections."""
    was_training = model.training
    model.eval()
    out = model([x.to(device) for x in inputs])
    model.train(was_training)
    results = []
    for o in out:
        o = o["moving"] if "moving" in o else o
        results.append({"boxes": o["boxes"].cpu(), "scores": o["scores"].cpu(),
                        "masks": (o["masks"][:, 0] > MASK_THRESHOLD).cpu()})
    return results


def detection_map(model: nn.Module, items: Iterable[dict[str, Any]], device: torch.device | str = "cpu",
                  batch: int = 4) -> dict[str, float]:
    """{"det_map50", "seg_map50", "images", "truth"} of `model` on items {"input", "target"} (label 1 = the class)."""
    preds: list[ImageDetections] = []
    truths: list[ImageTruth] = []
    chunk: list[dict[str, Any]] = []

    def flush() -> None:
        for item, p in zip(chunk, predict(model, [i["input"] for i in chunk], device)):
            preds.append(ImageDetections(scores=p["scores"].numpy(), boxes=p["boxes"].numpy(), masks=p["masks"].numpy()))
            t = item["target"]
            truths.append(ImageTruth(boxes=t["boxes"].numpy(), masks=t["masks"].numpy().astype(bool)))
        chunk.clear()

    for item in items:
        chunk.append(item)
        if len(chunk) == batch:
            flush()
    if chunk:
        flush()
    det = average_precision(preds, truths, "bbox", 0.5)
    seg = average_precision(preds, truths, "segm", 0.5)
    return {"det_map50": _finite(det.ap), "seg_map50": _finite(seg.ap), "images": len(truths), "truth": det.n_truth}


def _finite(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
