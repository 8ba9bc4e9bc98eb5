"""The refinement network: plain 3x3 convolutions at 1/4, 1/8 and 1/16 of the work size (the fast path
of CPU convolution; depthwise and batch norm cost more here than they save), whose output corrects the
hand-made fusion's logit at the work size.

Starting from the hand-made result (the residual form) means an untrained or weak network changes
little, and a few thousand frames are enough to learn where the fusion goes wrong; the fine edges stay
the fusion's own (and the guided filter's after it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from movseg_ros.refine.features import FEATURES

ARCH = "refine_geometric"


@dataclass(frozen=True)
class RefineArch:
    """Sizes the network is rebuilt from (recorded in its weights file)."""

    width: int = 16  # channels at the input size; 1.5x and 2x that at 1/2 and 1/4 of it
    scale: float = 0.25  # the network's input size as a fraction of the work size
    channels: int = len(FEATURES)
    rgb: bool = True  # also read the frame's colours (False: the maps only, nothing to memorise objects by)

    def __post_init__(self) -> None:
        if not 4 <= self.width <= 128:
            raise ValueError(f"refine width must be in [4, 128], got {self.width}")
        if not 0.1 <= self.scale <= 1.0:
            raise ValueError(f"refine scale must be in [0.1, 1.0], got {self.scale}")
        if self.channels != len(FEATURES):
            raise ValueError(f"refine channels must be {len(FEATURES)} ({', '.join(FEATURES)}), got {self.channels}")

    def to_dict(self) -> dict:
        return asdict(self)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1), nn.ReLU(inplace=True))


class RefineNet(nn.Module):
    """(features B x C x h x w at `scale`, fused probability Bx1xHxW at the work size) -> logits Bx1xHxW."""

    def __init__(self, arch: RefineArch = RefineArch()) -> None:
        super().__init__()
        self.arch = arch
        w1, w2, w3 = arch.width, arch.width * 3 // 2, arch.width * 2
        self.inputs = arch.channels if arch.rgb else arch.channels - 3  # the RGB planes come last
        self.stem = _conv(self.inputs, w1)
        self.down2 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.down3 = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3), _conv(w3, w3))
        self.up3 = nn.Conv2d(w3, w2, 1)
        self.up2 = nn.Conv2d(w2, w1, 1)
        self.head = nn.Conv2d(w1, 1, 3, padding=1)
        self.gain = nn.Parameter(torch.ones(()))  # weight of the fusion's own logit

    def forward(self, features: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        x1 = self.stem(features[:, :self.inputs])
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        y = x2 + F.interpolate(self.up3(x3), size=x2.shape[-2:], mode="bilinear", align_corners=False)
        y = x1 + F.interpolate(self.up2(y), size=x1.shape[-2:], mode="bilinear", align_corners=False)
        delta = F.interpolate(self.head(y), size=fused.shape[-2:], mode="bilinear", align_corners=False)
        return self.gain * torch.logit(fused.clamp(1e-3, 1 - 1e-3)) + delta


def build_refine(arch: RefineArch = RefineArch()) -> RefineNet:
    """A new network whose correction starts near zero (the head's last layer is scaled down)."""
    model = RefineNet(arch)
    with torch.no_grad():
        model.head.weight.mul_(0.1)
        model.head.bias.zero_()
    return model


def save_refine(path, model: RefineNet, meta: dict, half: bool = True):
    """Our checkpoint with the architecture record; fp16 floats when `half` (shipped files)."""
    from movseg_ros.model_files import save_with_settings

    return save_with_settings(path, ARCH, model, model.arch.to_dict(), meta, half)


def load_refine(path) -> tuple[RefineNet, dict]:
    """The network in `path` (eval mode, CPU, fp32) and its meta; ModelFileError names the file otherwise."""
    from movseg_ros.model_files import load_rebuilt

    return load_rebuilt(path, ARCH, "movseg train refine", lambda settings: RefineNet(RefineArch(**settings)))
