"""MP-Net (seed 003's motion stream): an encoder-decoder on the flow's angle field that gives, per pixel,
the probability of independent object motion, i.e. motion the camera's own does not explain.

Encoder to stride 64 (its receptive field spans the frame, so the camera's motion pattern can be told
from an object's), 4 decoder units with batch norm back to stride 4, each merging the encoder's features
of its resolution (skip connections); a global-average context is added at the bottom.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from movseg_ros.accel.threads import torch_threads
from movseg_ros.two_stream.arch import MOTION_INPUTS
from movseg_ros.two_stream.inputs import motion_flow
from movseg_ros.visual_memory.angle_field import field_tensor

ARCH = "mpnet"
STRIDE = 64  # the encoder's total stride: inputs are padded to a multiple of it
OUTPUT_STRIDE = 4
MIN_SIDE = 32


@dataclass(frozen=True)
class MPNetArch:
    """Sizes the network is rebuilt from (recorded in its weights file)."""

    width: int = 32  # channels at stride 8; w/4, w/2 at strides 2, 4 and 2w, 3w, 4w at strides 16, 32, 64
    context: bool = True  # add a global-average-pooled summary of the bottom features back to them
    motion_input: str = "flow"  # flow: the angle field of the flow; residual: of the flow minus the camera's homography

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, int) or not 16 <= self.width <= 128 \
                or self.width % 8:
            raise ValueError(f"mpnet width must be a multiple of 8 in [16, 128], got {self.width!r}")
        if not isinstance(self.context, bool):
            raise ValueError(f"mpnet context must be true or false, got {self.context!r}")
        if self.motion_input not in MOTION_INPUTS:
            raise ValueError(f"mpnet motion_input '{self.motion_input}' is not one of {', '.join(MOTION_INPUTS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def channels(self) -> tuple[int, ...]:
        """Encoder channels at strides 2, 4, 8, 16, 32, 64."""
        w = self.width
        return (w // 4, w // 2, w, 2 * w, 3 * w, 4 * w)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DecoderUnit(nn.Module):
    """Bring the coarser output to the skip's channels (1x1), upsample it x2, add the encoder's skip
    features of this resolution, then 3x3 conv + BN + ReLU."""

    def __init__(self, coarse: int, skip: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(coarse, skip, 1, bias=False)
        self.conv = _conv(skip, skip)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.lateral(coarse), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(up + skip)


class MPNet(nn.Module):
    """Angle field (Bx3xHxW: cos, sin, magnitude) -> motion logits Bx1x ceil(H/4) x ceil(W/4)."""

    def __init__(self, arch: MPNetArch = MPNetArch()) -> None:
        super().__init__()
        self.arch = arch
        c = arch.channels()
        self.encoder = nn.ModuleList([_conv(3, c[0], 2)] + [nn.Sequential(_conv(a, b, 2), _conv(b, b))
                                                              for a, b in zip(c[:-1], c[1:])])
        self.context = nn.Conv2d(c[-1], c[-1], 1) if arch.context else None
        # decoder units at strides 32, 16, 8, 4, each as wide as the encoder there
        self.decoder = nn.ModuleList(DecoderUnit(a, s) for a, s in zip(c[:0:-1], c[-2:0:-1]))
        self.head = nn.Conv2d(c[1], 1, 1)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if field.ndim != 4 or field.shape[1] != 3:
            raise ValueError(f"MPNet takes a Bx3xHxW angle field, got shape {tuple(field.shape)}")
        h, w = field.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"MPNet needs frames at least {MIN_SIDE} px a side, got {w}x{h}")
        x = F.pad(field, (0, -w % STRIDE, 0, -h % STRIDE))  # zero field: no motion
        feats = []
        for stage in self.encoder:
            x = stage(x)
            feats.append(x)
        if self.context is not None:
            x = x + self.context(x.mean((2, 3), keepdim=True))
        for unit, skip in zip(self.decoder, reversed(feats[1:-1])):
            x = unit(x, skip)
        return self.head(x)[..., :math.ceil(h / OUTPUT_STRIDE), :math.ceil(w / OUTPUT_STRIDE)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_mpnet(path, model: MPNet, meta: dict, half: bool = True) -> Path:
    """Our checkpoint with the architecture record; fp16 floats when `half` (shipped files)."""
    from movseg_ros.model_files import save_with_settings

    return save_with_settings(path, ARCH, model, model.arch.to_dict(), meta, half)


def load_mpnet(path) -> tuple[MPNet, dict]:
    """The network in `path` (eval mode, CPU, fp32) and its meta; ModelFileError names the file otherwise."""
    from movseg_ros.model_files import load_rebuilt

    return load_rebuilt(path, ARCH, "movseg train mpnet", lambda settings: MPNet(MPNetArch(**settings)))


class MotionPredictor:
    """The trained MP-Net (on `device`): flow (H, W, 2) px at frame t -> P(independent motion) at stride 4.

    The network sees what its file records (`MPNetArch.motion_input`): the flow, or its camera-compensated part."""

    def __init__(self, weights: str | Path, frozen: bool = False, device: torch.device = torch.device("cpu"),
                 threads: int = 0) -> None:
        self.model, self.meta = load_mpnet(weights)
        self.threads = threads  # torch threads for its own calls (0: the process's setting)
        self.model.to(device)
        self.weights, self.device = Path(weights), device
        self._run = self.model
        if frozen:  # a TorchScript graph per flow size (the same outputs, faster on a CPU)
            from movseg_ros.accel.frozen import PerShapeFrozen

            self._run = PerShapeFrozen(self.model)

    @torch.no_grad()
    def __call__(self, flow: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """(ceil(H/4), ceil(W/4)) float32 probabilities. A file that reads the residual takes `residual` (the same
        motion's camera-compensated part, H x W x 2) when the caller has one, else fits the homography itself."""
        if self.model.arch.motion_input == "residual":
            flow = motion_flow(flow, "residual") if residual is None else residual
        with torch_threads(self.threads):
            logits = self._run(field_tensor(flow)[None].to(self.device))
        return torch.sigmoid(logits)[0, 0].cpu().numpy().astype(np.float32, copy=False)
