"""Running the memory on frames: the frozen appearance features of an RGB frame, and the memory itself,
online (one step a frame, state carried) or over a whole sequence both ways (offline)."""

from __future__ import annotations

import numpy as np
import torch

from movseg_ros.accel.frozen import PerShapeFrozen
from movseg_ros.visual_memory.network import AppearanceEncoder, VisualMemoryNet


class AppearanceFeatures:
    """RGB (H, W, 3) uint8 -> the encoder's stride-8 and stride-16 features (no batch axis), on `device`."""

    def __init__(self, encoder: AppearanceEncoder | None = None, frozen: bool = False,
                 device: torch.device = torch.device("cpu")) -> None:
        if encoder is None:
            from movseg_ros.pretrained import load_imagenet_mobilenet_v2

            encoder = AppearanceEncoder()
            load_imagenet_mobilenet_v2(encoder.blocks)
        encoder = encoder.eval().to(device)
        self.device = device
        self.encoder = PerShapeFrozen(encoder) if frozen else encoder

    @torch.no_grad()
    def tensors(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 32, h8, w8) and (1, 96, h16, w16) on the device."""
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None].to(self.device)
        return self.encoder(x)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As numpy float32 (what the training cache stores)."""
        s8, s16 = self.tensors(rgb)
        return s8[0].cpu().numpy(), s16[0].cpu().numpy()


class OnlineMemory:
    """One GRU step a frame; `reset` forgets (a new stream). Inputs and state live on `device`."""

    def __init__(self, net: VisualMemoryNet, frozen: bool = False, device: torch.device = torch.device("cpu")) -> None:
        self.net = net.eval().to(device)
        self.device = device
        self.features = AppearanceFeatures(self.net.encoder, frozen, device)
        self.state: torch.Tensor | None = None

    def reset(self) -> None:
        self.state = None

    @torch.no_grad()
    def input(self, rgb: np.ndarray, motion: np.ndarray) -> torch.Tensor:
        """A frame's GRU input (1, C, h8, w8) from its RGB and its motion maps: MP-Net's (h4, w4), or
        (motion_channels, h4, w4)."""
        s8, s16 = self.features.tensors(rgb)
        maps = np.asarray(motion, np.float32)
        moving = torch.from_numpy(maps if maps.ndim == 3 else maps[None])[None].to(self.device)
        return self.net.inputs(s8, s16, moving)

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> np.ndarray:
        """The next frame's memory logits at stride 8 (h8, w8)."""
        self.state, logits = self.net.step(x, self.state)
        return logits[0, 0].cpu().numpy()

    @torch.no_grad()
    def both_ways(self, xs: list[torch.Tensor], mode: str = "average") -> np.ndarray:
        """A whole sequence's inputs -> offline (bidirectional) logits (T, h8, w8): by the offline head on both
        directions' states (`head`), or as the mean probability of the online head run forward and backward
        (`average`)."""
        run = torch.cat(xs, 0)[None]
        if mode == "head":
            _, offline = self.net.run(run, offline=True)
            return offline[0, :, 0].cpu().numpy()
        return torch.logit(self.net.averaged(run), eps=1e-6)[0, :, 0].cpu().numpy()
