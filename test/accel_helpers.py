"""A small conv net and inputs for the accelerator tests: real modules, tiny shapes, fast compiles."""

from __future__ import annotations

import torch
from torch import nn


class SmallFlowNet(nn.Module):
    """Two images in, a 2-channel map out, like the flow networks the accelerators serve."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(6, hidden, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(hidden))
        self.head = nn.Conv2d(hidden, 2, 3, padding=1)

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.encode(torch.cat([img1, img2], dim=1)))) * 4.0


def small_net(seed: int = 0, hidden: int = 8) -> SmallFlowNet:
    torch.manual_seed(seed)
    return SmallFlowNet(hidden).eval()


def image_pair(seed: int, h: int = 16, w: int = 24) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, h, w, generator=g) * 2 - 1, torch.rand(1, 3, h, w, generator=g) * 2 - 1]
