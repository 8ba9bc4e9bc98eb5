"""Our salient-object network: ImageNet MobileNetV2 to stride 16, a light top-down decoder to stride 4.

Distilled from U^2-Net-p and DAVIS-2016 train masks, so the geometric pipeline gets an object's extent
at any frame size in a few tens of ms on a CPU (U^2-Net-p takes about 1 s a frame here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v2

ARCH = "saliency_mobilenet_v2"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TAPS = (3, 6, 13)  # MobileNetV2 feature blocks whose outputs are strides 4, 8, 16 (24, 32, 96 channels)
TAP_CHANNELS = (24, 32, 96)


@dataclass(frozen=True)
class SaliencyArch:
    """Sizes the network is rebuilt from (recorded in its weights file)."""

    width: int = 48  # decoder channels

    def __post_init__(self) -> None:
        if not 8 <= self.width <= 256:
            raise ValueError(f"saliency width must be in [8, 256], got {self.width}")

    def to_dict(self) -> dict:
        return asdict(self)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SaliencyNet(nn.Module):
    """uint8-range RGB (Bx3xHxW float) -> saliency logits at stride 4 (Bx1xH/4xW/4)."""

    def __init__(self, arch: SaliencyArch = SaliencyArch()) -> None:
        super().__init__()
        self.arch = arch
        self.encoder = mobilenet_v2().features[:TAPS[-1] + 1]
        w = arch.width
        self.lateral = nn.ModuleList(nn.Conv2d(c, w, 1) for c in TAP_CHANNELS)
        self.smooth = nn.ModuleList(_conv(w, w) for _ in TAP_CHANNELS[:-1])
        self.context = _conv(w, w)
        self.head = nn.Conv2d(w, 1, 1)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0, persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb - self.mean) / self.std
        taps = []
        for i, block in enumerate(self.encoder):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        return self.decode(taps)

    def decode(self, taps: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The encoder's stride-4, 8 and 16 features -> logits at stride 4 (the visual memory shares its encoder)."""
        y = self.context(self.lateral[-1](taps[-1]))
        for lateral, smooth, tap in zip(reversed(self.lateral[:-1]), reversed(self.smooth), reversed(taps[:-1])):
            y = smooth(lateral(tap) + F.interpolate(y, size=tap.shape[-2:], mode="bilinear", align_corners=False))
        return self.head(y)


def build_saliency(arch: SaliencyArch = SaliencyArch(), init: str = "imagenet") -> SaliencyNet:
    """A new network: encoder from the installed ImageNet MobileNetV2 (`init: imagenet`) or random (`none`)."""
    if init not in ("imagenet", "none"):
        raise ValueError(f"saliency init '{init}' is not one of imagenet, none")
    model = SaliencyNet(arch)
    if init == "imagenet":
        from movseg_ros.pretrained import load_imagenet_mobilenet_v2

        load_imagenet_mobilenet_v2(model.encoder)
    return model


def save_saliency(path, model: SaliencyNet, meta: dict, half: bool = True):
    """Our checkpoint with the architecture record; fp16 floats when `half` (shipped files)."""
    from movseg_ros.model_files import save_with_settings

    return save_with_settings(path, ARCH, model, model.arch.to_dict(), meta, half)


def load_saliency(path) -> tuple[SaliencyNet, dict]:
    """The network in `path` (eval mode, CPU, fp32) and its meta; ModelFileError names the file otherwise."""
    from movseg_ros.model_files import load_rebuilt

    return load_rebuilt(path, ARCH, "movseg train saliency", lambda settings: SaliencyNet(SaliencyArch(**settings)))
