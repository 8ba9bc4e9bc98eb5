"""Running the memory on frames: the frozen appearance features of an RGB frame, and the memory itself,
online (one step a frame, state carried) or over a whole sequence both ways (offline)."""

from __future__ import annotations

import numpy as np
import torch

from movseg_ros.visual_memory.frozen import PerShapeFrozen
from movseg_ros.visual_memory.network import AppearanceEncoder, VisualMemoryNet


class AppearanceFeatures:
    """RGB (H, W, 3) uint8 -> the encoder's stride-8 and stride-16 features (numpy float32, no batch axis)."""

    def __init__(self, encoder: AppearanceEncoder | None = None, frozen: bool = False) -> None:
        if encoder is None:
            from movseg_ros.pretrained import load_imagenet_mobilenet_v2

            encoder = AppearanceEncoder()
            load_imagenet_mobilenet_v2(encoder.blocks)
        self.encoder = PerShapeFrozen(encoder) if frozen else encoder.eval()

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None]
        s8, s16 = self.encoder(x)
        return s8[0].numpy(), s16[0].numpy()


class OnlineMemory:
    """One GRU step a frame; `reset` forgets (a new stream)."""

    def __init__(self, net: VisualMemoryNet, frozen: bool = False) -> None:
        self.net = net.eval()
        self.features = AppearanceFeatures(net.encoder, frozen)
        self.state: torch.Tensor | None = None

    def reset(self) -> None:
        self.state = None

    def input(self, rgb: np.ndarray, motion: np.ndarray) -> torch.Tensor:
        """A frame's GRU input (1, C, h8, w8) from its RGB and MP-Net's map (h4, w4)."""
        s8, s16 = self.features(rgb)
        with torch.no_grad():
            return self.net.inputs(torch.from_numpy(s8)[None], torch.from_numpy(s16)[None],
                                   torch.from_numpy(np.asarray(motion, np.float32))[None, None])

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> np.ndarray:
        """The next frame's memory logits at stride 8 (h8, w8)."""
        self.state, logits = self.net.step(x, self.state)
        return logits[0, 0].numpy()

    @torch.no_grad()
    def both_ways(self, xs: list[torch.Tensor]) -> np.ndarray:
        """A whole sequence's inputs -> offline (bidirectional) logits (T, h8, w8)."""
        _, offline = self.net.run(torch.cat(xs, 0)[None], offline=True)
        return offline[0, :, 0].numpy()
