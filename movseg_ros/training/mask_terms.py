"""What the single-map stages (saliency, mpnet) share: the soft Dice loss and the held-aside mask IoU."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from movseg_ros.training.loop import Scores


def soft_dice(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - smoothed Dice of sigmoid(logits) against `mask` (B x 1 x H x W, the same size), batch mean."""
    p = torch.sigmoid(logits)
    inter = (p * mask).sum((1, 2, 3))
    return (1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + mask.sum((1, 2, 3)) + 1)).mean()


def held_out_iou(input_key: str) -> Scores:
    """A score: mean per-frame IoU of p > 0.5 (upsampled to the mask) over held-aside items whose union is not
    empty, the network reading `item[input_key]`."""

    @torch.no_grad()
    def score(model: nn.Module, items: list[dict[str, Any]], device: torch.device) -> dict[str, Any]:
        was = model.training
        model.eval()
        ious = []
        for item in items:
            logits = model(item[input_key][None].to(device))
            p = F.interpolate(torch.sigmoid(logits), size=item["mask"].shape[-2:], mode="bilinear", align_corners=False)
            pred, truth = (p[0, 0] > 0.5).cpu().numpy(), item["mask"][0].numpy() > 0.5
            union = np.count_nonzero(pred | truth)
            if union:
                ious.append(np.count_nonzero(pred & truth) / union)
        model.train(was)
        return {"val_iou": float(np.mean(ious)) if ious else None}

    return score
