"""RAFT's sequence loss and the end-point error, on (B,2,H,W) flow tensors in pixels."""

from __future__ import annotations

import torch


def valid_mask(target: torch.Tensor, max_flow: float) -> torch.Tensor:
    """(B,H,W) float mask of pixels whose true flow is shorter than `max_flow` (0 or less: all pixels)."""
    if max_flow <= 0:
        return torch.ones_like(target[:, 0])
    return (target.norm(dim=1) < max_flow).to(target.dtype)


def sequence_loss(predictions: list[torch.Tensor], target: torch.Tensor, gamma: float = 0.8,
                  max_flow: float = 400.0) -> torch.Tensor:
    """Sum over the N iterative predictions of gamma^(N-1-i) * mean masked L1 error (RAFT's loss).

    The last prediction weighs 1, the one before gamma, and so on; the L1 error is summed over x and y
    and averaged over the valid pixels (|true flow| < max_flow).
    """
    if not predictions:
        raise ValueError("sequence_loss needs at least one prediction")
    mask = valid_mask(target, max_flow)
    denom = mask.sum().clamp_min(1.0)
    n = len(predictions)
    total = target.new_zeros(())
    for i, pred in enumerate(predictions):
        err = (pred - target).abs().sum(dim=1)
        total = total + gamma ** (n - 1 - i) * (err * mask).sum() / denom
    return total


def end_point_error(pred: torch.Tensor, target: torch.Tensor, max_flow: float = 0.0) -> torch.Tensor:
    """Mean Euclidean distance between predicted and true flow over the valid pixels."""
    mask = valid_mask(target, max_flow)
    epe = (pred - target).norm(dim=1)
    return (epe * mask).sum() / mask.sum().clamp_min(1.0)
