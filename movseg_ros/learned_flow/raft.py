"""RAFT flow (torchvision's raft_small / raft_large) as a FlowEstimator, weights from a file.

The heavy part is one nn.Module (`RaftFlow.module`: two normalised images in, the final flow out);
`RaftFlow.__call__` only prepares tensors around `forward_fn`, which an accelerated callable
(torch.compile, TensorRT) can replace through `set_forward`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.optical_flow import raft_large, raft_small

from movseg_ros.model_files import load_checkpoint, load_into

ARCHS: dict[str, Callable[..., nn.Module]] = {"raft_small": raft_small, "raft_large": raft_large}
DEVICES = ("cpu", "cuda", "auto")
MIN_SIDE = 128  # the correlation pyramid needs feature maps of at least 16x16 at 1/8 resolution

ForwardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class RaftFlowError(ValueError):
    """A RAFT setting that is out of range or inconsistent; the message names the field."""


def build_raft(arch: str) -> nn.Module:
    """An untrained torchvision RAFT of the named architecture (never downloads weights)."""
    if arch not in ARCHS:
        raise RaftFlowError(f"RAFT arch '{arch}' is not one of {', '.join(ARCHS)}")
    return ARCHS[arch](weights=None, progress=False)


def resolve_device(device: str) -> torch.device:
    """'auto' is CUDA when there is one, else the CPU; 'cuda' without one is an error."""
    if device not in DEVICES:
        raise RaftFlowError(f"RAFT device '{device}' is not one of {', '.join(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RaftFlowError("RAFT device 'cuda' asked for but torch sees no CUDA device")
    return torch.device(device)


@dataclass(frozen=True)
class RaftFlowConfig:
    """Which RAFT, its weights file, refinement iterations, device and the scale images are resized by."""

    arch: str = "raft_small"
    weights: str = ""  # path to our checkpoint or a torchvision state dict; required
    iterations: int = 12  # RAFT's num_flow_updates
    device: str = "cpu"  # cpu | cuda | auto
    scale: float = 1.0  # images are resized by this before the flow is computed (flow scaled back)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise RaftFlowError(f"RAFT arch '{self.arch}' is not one of {', '.join(ARCHS)}")
        if not self.weights:
            raise RaftFlowError("RAFT weights: a weights file is required (e.g. models/raft_small_synth.pt)")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or not 1 <= self.iterations <= 64:
            raise RaftFlowError(f"RAFT iterations must be an integer in [1, 64], got {self.iterations!r}")
        if self.device not in DEVICES:
            raise RaftFlowError(f"RAFT device '{self.device}' is not one of {', '.join(DEVICES)}")
        if not 0.1 <= self.scale <= 2.0:
            raise RaftFlowError(f"RAFT scale must be in [0.1, 2.0], got {self.scale}")


class RaftFinalFlow(nn.Module):
    """RAFT reduced to what inference needs: (img1, img2) in [-1, 1], (B,3,H,W), H and W multiples of 8
    and >= 128 -> the last flow estimate (B,2,H,W). This is the module an accelerator compiles/exports."""

    def __init__(self, raft: nn.Module, iterations: int) -> None:
        super().__init__()
        self.raft = raft
        self.iterations = iterations

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        return self.raft(img1, img2, num_flow_updates=self.iterations)[-1]


class RaftFlow:
    """Forward flow a -> b (HxWx2 float32 pixels) from a RAFT loaded from `config.weights`."""

    name = "raft"

    def __init__(self, config: RaftFlowConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        raft = build_raft(config.arch)
        checkpoint = load_checkpoint(config.weights, config.arch)
        load_into(raft, checkpoint["state_dict"], config.weights, config.arch)
        self.meta = checkpoint["meta"]
        self.module = RaftFinalFlow(raft, config.iterations).eval().to(self.device)
        self.forward_fn: ForwardFn = self._eager

    def _eager(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(img1, img2)

    def set_forward(self, fn: ForwardFn | None) -> None:
        """Use `fn(img1, img2) -> flow` (same contract as `module`) instead of the eager module; None restores it."""
        self.forward_fn = self._eager if fn is None else fn

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) the module sees for an image of this size (after scale and padding)."""
        h, w = self._scaled(height, width)
        return _padded(h), _padded(w)

    def prepare(self, a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Two HxWx3 uint8 RGB (or HxW grey) images -> the module's (1,3,H',W') inputs in [-1, 1]."""
        if a.shape != b.shape:
            raise RaftFlowError(f"RAFT images differ in shape: {a.shape} vs {b.shape}")
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
            raise RaftFlowError(f"RAFT takes HxWx3 RGB or HxW grey images, got shape {a.shape}")
        h, w = self._scaled(*a.shape[:2])
        ph, pw = _padded(h), _padded(w)
        return self._tensor(a, h, w, ph, pw), self._tensor(b, h, w, ph, pw)

    def finish(self, flow: torch.Tensor, height: int, width: int) -> np.ndarray:
        """The module's (1,2,H',W') output -> HxWx2 float32 at the original size, in original pixels."""
        h, w = self._scaled(height, width)
        f = flow[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()
        if (h, w) != (height, width):
            f = cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR)
            f[..., 0] *= width / w
            f[..., 1] *= height / h
        return np.ascontiguousarray(f, dtype=np.float32)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        img1, img2 = self.prepare(a, b)
        return self.finish(self.forward_fn(img1, img2), *a.shape[:2])

    def _scaled(self, height: int, width: int) -> tuple[int, int]:
        s = self.config.scale
        return (height, width) if s == 1.0 else (max(8, round(height * s)), max(8, round(width * s)))

    def _tensor(self, img: np.ndarray, h: int, w: int, ph: int, pw: int) -> torch.Tensor:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
        t = t.to(self.device).mul_(2.0 / 255.0).sub_(1.0)
        if (ph, pw) != (h, w):
            t = F.pad(t, (0, pw - w, 0, ph - h), mode="replicate")
        return t


def _padded(n: int) -> int:
    """n rounded up to a multiple of 8, at least MIN_SIDE."""
    return max(MIN_SIDE, (n + 7) // 8 * 8)


