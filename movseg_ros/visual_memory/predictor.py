"""Running the memory on frames: the frozen appearance features of an RGB frame, and the memory itself,
online (one step a frame, state carried) or over a whole sequence both ways (offline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from movseg_ros.accel.frozen import PerShapeFrozen
from movseg_ros.visual_memory.network import AppearanceEncoder, VisualMemoryNet


class AppearanceFeatures:
    """RGB (H, W, 3) uint8 -> the encoder's stride-4, 8 and 16 features (and 32: a deep encoder), on `device`."""

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
    def tensors(self, rgb: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(1, 24, h4, w4), (1, 32, h8, w8), (1, 96, h16, w16) (and (1, 320, h32, w32)) on the device."""
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None].to(self.device)
        return self.encoder(x)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, ...]:
        """As numpy float32 (what the training cache stores)."""
        return tuple(t[0].cpu().numpy() for t in self.tensors(rgb))


@dataclass
class MemoryInput:
    """One frame's inputs: the GRU's at stride 8, and the fine decoder's stride-4 features and motion maps."""

    x: torch.Tensor  # (1, C, h8, w8)
    s4: torch.Tensor  # (1, 24, h4, w4)
    motion: torch.Tensor  # (1, motion_channels, h4', w4')


@dataclass
class PreparedStep:
    """A frame's memory work done before its motion is known (OnlineMemory.prepare)."""

    part: torch.Tensor  # (1, 3 * state, h8, w8): the GRU's input part of the appearance channels, biases included
    state_gates: torch.Tensor | None  # the gates' part of the state it was prepared on (None: a zero state)
    state: torch.Tensor | None  # that state
    s4: torch.Tensor  # the encoder's stride-4 features (the fine decoder's)


class OnlineMemory:
    """One GRU step a frame; `reset` forgets (a new stream). Inputs and state live on `device`."""

    def __init__(self, net: VisualMemoryNet, frozen: bool = False, device: torch.device = torch.device("cpu"),
                 saliency: torch.nn.Module | None = None) -> None:
        self.net = net.eval().to(device)
        self.device = device
        self.features = AppearanceFeatures(self.net.encoder, frozen, device)
        if net.arch.saliency and saliency is None:
            raise ValueError("this memory reads a saliency map: give it the saliency network")
        self.saliency = saliency.eval().to(device) if net.arch.saliency else None  # SaliencyNet; its decoder only
        self.state: torch.Tensor | None = None

    def reset(self) -> None:
        self.state = None

    @torch.no_grad()
    def input(self, rgb: np.ndarray, motion: np.ndarray) -> MemoryInput:
        """A frame's inputs from its RGB and its motion maps: MP-Net's (h4, w4), or (C, h4, w4) with the residual's;
        the saliency map, when the memory reads one, is decoded here from the shared encoder's features."""
        return self.input_from(self.features.tensors(rgb), motion)

    @torch.no_grad()
    def input_from(self, taps: tuple[torch.Tensor, ...], motion: np.ndarray) -> MemoryInput:
        """As `input`, from the frame's encoder features (`self.features.tensors`, computed ahead by a caller that
        overlaps them with other work)."""
        s4, s8, s16 = taps[:3]
        moving = self._motion_tensor(motion)
        if self.saliency is not None:
            salient = torch.sigmoid(self.saliency.decode((s4, s8, s16)))
            if salient.shape[-2:] != moving.shape[-2:]:
                salient = F.interpolate(salient, size=moving.shape[-2:], mode="bilinear", align_corners=False)
            moving = torch.cat([moving, salient], 1)
        return MemoryInput(self.net.inputs(s8, s16, moving, taps[3] if len(taps) > 3 else None), s4, moving)

    def _motion_tensor(self, motion: np.ndarray) -> torch.Tensor:
        """Motion maps (h4, w4) or (C, h4, w4) as a (1, C, h4, w4) float tensor on the device."""
        maps = np.asarray(motion, np.float32)
        return torch.from_numpy(maps if maps.ndim == 3 else maps[None])[None].to(self.device)

    @torch.no_grad()
    def prepare(self, taps: tuple[torch.Tensor, ...]) -> PreparedStep:
        """The next step's work that needs no motion, from the frame's encoder features: the GRU's input part of
        the appearance channels and its gates' state part (`step_prepared` then finishes it once the motion
        maps exist; a caller that waits for motion waits for that rest alone). Not for a memory that reads a
        saliency map."""
        if self.net.arch.saliency:
            raise ValueError("a memory that reads a saliency map takes its inputs whole (input_from)")
        app = self.net.appearance(taps[1], taps[2], taps[3] if len(taps) > 3 else None)
        gru = self.net.gru
        return PreparedStep(gru.channel_part(app, 0, bias=True),
                            None if self.state is None else gru.state_gates(self.state), self.state, taps[0])

    @torch.no_grad()
    def step_prepared(self, prepared: PreparedStep, motion: np.ndarray) -> np.ndarray:
        """`step` on a prepared frame and its motion maps, as (h4, w4) or (C, h4, w4) in `input_from`: the same
        logits, up to float rounding. The memory must not have stepped since `prepare`."""
        if prepared.state is not self.state:
            raise RuntimeError("the memory stepped between prepare and step_prepared")
        moving = self._motion_tensor(motion)
        net = self.net
        rest = net.gru.channel_part(net.motion_input(moving, prepared.part.shape[-2:]), net.arch.appearance, bias=False)
        self.state = net.gru.recur(prepared.part + rest, self.state, prepared.state_gates)
        logits = net.online_head(self.state)
        if net.fine is not None:
            logits = net.fine(logits, self.state, prepared.s4, moving)
        return logits[0, 0].cpu().numpy()

    @torch.no_grad()
    def step(self, frame: MemoryInput) -> np.ndarray:
        """The next frame's online logits: at stride 4 with the fine decoder, else at stride 8."""
        self.state, logits = self.net.step(frame.x, self.state, (frame.s4, frame.motion))
        return logits[0, 0].cpu().numpy()

    @torch.no_grad()
    def both_ways(self, frames: list[MemoryInput], mode: str = "average") -> np.ndarray:
        """A whole sequence's inputs -> offline (bidirectional) logits (T, h, w): by the offline head on both
        directions' states (`head`, stride 8), or as the mean probability of the online head (fine where the
        memory has it) run forward and backward (`average`)."""
        run = torch.cat([f.x for f in frames], 0)[None]
        if mode == "head":
            _, offline = self.net.run(run, offline=True)
            return offline[0, :, 0].cpu().numpy()
        s4 = torch.cat([f.s4 for f in frames], 0)[None]
        motion = torch.cat([f.motion for f in frames], 0)[None]
        return torch.logit(self.net.averaged(run, s4, motion), eps=1e-6)[0, :, 0].cpu().numpy()
