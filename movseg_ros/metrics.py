"""Segmentation metrics (region similarity J, as DAVIS defines it)."""

from __future__ import annotations

import numpy as np


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float:
    """Region IoU of two boolean masks; an empty prediction on an empty truth scores 1."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in size")
    union = np.logical_or(pred, truth).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, truth).sum() / union)
