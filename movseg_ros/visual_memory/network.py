"""The visual memory (seed 003): ImageNet appearance at stride 8, MP-Net's motion map, and a ConvGRU over time.

The appearance encoder is torchvision's MobileNetV2 to stride 16 (to stride 32 with `MemoryArch.deep`),
frozen at its ImageNet weights, so its outputs can be cached for training; two 1x1 convs with tanh reduce
them to `appearance` channels at stride 8, as in the paper. One ConvGRU runs forward (online) and, with the same weights, backward; the
online head reads the forward state, the offline head both. With `MemoryArch.fine`, a small decoder
brings the online head's map to stride 4 from the state, the encoder's stride-4 features and the
motion maps (which are at stride 4): a stride-8 map alone caps J near 0.75 on DAVIS at width 256.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v2

ARCH = "visual_memory"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TAPS = (3, 6, 13, 17)  # MobileNetV2 feature blocks whose outputs are strides 4, 8, 16 and 32 (24, 32, 96 and 320 channels)
TAP_CHANNELS = (24, 32, 96, 320)


@dataclass(frozen=True)
class MemoryArch:
    """Sizes the memory is rebuilt from (recorded in its weights file)."""

    appearance: int = 128  # reduced appearance channels (the paper's 128)
    state: int = 64  # ConvGRU state channels (the paper's 64)
    kernel: int = 3  # ConvGRU kernel (the paper's 7; 3 keeps a CPU frame cheap)
    residual: bool = False  # a second motion input: the flow's camera-compensated residual (visual_memory/residual.py)
    dropout: float = 0.0  # in training, this share of the reduced appearance channels is dropped (leans on motion)
    fine: int = 0  # channels of the stride-4 decoder on the online head (0: the stride-8 map alone)
    saliency: bool = False  # a last input map: the saliency network's probability (decoded from the shared encoder)
    deep: bool = False  # the encoder's stride-32 features too (a linear probe of object cells: IoU 0.443 -> 0.473)

    def __post_init__(self) -> None:
        for name, low, high in (("appearance", 8, 512), ("state", 8, 256)):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"visual memory {name} must be in [{low}, {high}], got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"visual memory dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.fine <= 128:
            raise ValueError(f"visual memory fine must be in [0, 128], got {self.fine}")
        if self.kernel not in (1, 3, 5, 7):
            raise ValueError(f"visual memory kernel must be 1, 3, 5 or 7, got {self.kernel}")

    @property
    def motion_channels(self) -> int:
        """Maps the GRU reads beside appearance: MP-Net's, the residual when `residual`, the saliency when `saliency`."""
        return 1 + int(self.residual) + int(self.saliency)

    @property
    def taps(self) -> int:
        """Encoder outputs the memory reads: strides 4, 8 and 16, and 32 when `deep`."""
        return 4 if self.deep else 3

    def to_dict(self) -> dict:
        return asdict(self)


class AppearanceEncoder(nn.Module):
    """uint8-range RGB (Bx3xHxW float) -> MobileNetV2 features at strides 4, 8 and 16, and 32 with `taps=4`
    (ImageNet, kept frozen)."""

    def __init__(self, taps: int = 3) -> None:
        super().__init__()
        if taps not in (3, 4):
            raise ValueError(f"the appearance encoder has 3 or 4 taps, got {taps}")
        self.blocks = mobilenet_v2().features[:TAPS[taps - 1] + 1]
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0, persistent=False)

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (rgb - self.mean) / self.std
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        return tuple(taps)


class ConvGRUCell(nn.Module):
    """A convolutional GRU: h' = (1 - z) h + z tanh(W [x, r h]), gates z, r = sigmoid(W [x, h]).

    Each W is split into its input part and its state part (the same sum), so a run's input parts are
    one batched convolution over all its frames, shared by both directions; only the state parts recur.
    """

    def __init__(self, inputs: int, state: int, kernel: int) -> None:
        super().__init__()
        self.state = state
        pad = kernel // 2
        self.input_gates = nn.Conv2d(inputs, 2 * state, kernel, padding=pad)
        self.state_gates = nn.Conv2d(state, 2 * state, kernel, padding=pad, bias=False)
        self.input_candidate = nn.Conv2d(inputs, state, kernel, padding=pad)
        self.state_candidate = nn.Conv2d(state, state, kernel, padding=pad, bias=False)

    def input_part(self, x: torch.Tensor) -> torch.Tensor:
        """The input's contribution to the gates and the candidate (N, 3 * state, h, w)."""
        return torch.cat([self.input_gates(x), self.input_candidate(x)], 1)

    def channel_part(self, x: torch.Tensor, start: int, bias: bool) -> torch.Tensor:
        """`input_part` of input channels start.. start + x.shape[1] alone (with the biases when `bias`): the
        parts of disjoint channel ranges sum to the whole's, so the inputs known first can be done ahead."""
        weight = torch.cat([self.input_gates.weight, self.input_candidate.weight], 0)[:, start:start + x.shape[1]]
        return F.conv2d(x, weight, torch.cat([self.input_gates.bias, self.input_candidate.bias]) if bias else None,
                        padding=self.input_gates.padding)

    def recur(self, part: torch.Tensor, h: torch.Tensor | None, state_gates: torch.Tensor | None = None
              ) -> torch.Tensor:
        """The next state from an input part and the current state (None: zeros); `state_gates` is
        `self.state_gates(h)` when computed ahead."""
        s = self.state
        if h is None:
            h = part.new_zeros(part.shape[0], s, *part.shape[-2:])
        gates = part[:, :2 * s] + (self.state_gates(h) if state_gates is None else state_gates)
        z, r = torch.sigmoid(gates).chunk(2, 1)
        n = torch.tanh(part[:, 2 * s:] + self.state_candidate(r * h))
        return (1 - z) * h + z * n

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        return self.recur(self.input_part(x), h)


class VisualMemoryNet(nn.Module):
    """Per-frame inputs -> memory logits at stride 8, online (forward state) or offline (both directions)."""

    def __init__(self, arch: MemoryArch = MemoryArch()) -> None:
        super().__init__()
        self.arch = arch
        self.encoder = AppearanceEncoder(arch.taps)
        a = arch.appearance
        self.reduce = nn.Sequential(nn.Conv2d(sum(TAP_CHANNELS[1:arch.taps]), a, 1), nn.Tanh(), nn.Conv2d(a, a, 1), nn.Tanh())
        self.gru = ConvGRUCell(a + arch.motion_channels, arch.state, arch.kernel)
        self.online_head = nn.Conv2d(arch.state, 1, 1)
        self.offline_head = nn.Conv2d(2 * arch.state, 1, 1)
        self.fine = FineDecoder(arch.state, TAP_CHANNELS[0], arch.motion_channels, arch.fine) if arch.fine else None

    def inputs(self, s8: torch.Tensor, s16: torch.Tensor, motion: torch.Tensor, s32: torch.Tensor | None = None
               ) -> torch.Tensor:
        """The GRU's input at stride 8: reduced appearance and the motion maps (N, motion_channels, any size,
        area-resized). A deep memory reads `s32` too: its cells from the window's top-left (a crop starts on a
        stride-32 cell), upsampled 4x and cut to the stride-8 size."""
        return torch.cat([self.appearance(s8, s16, s32), self.motion_input(motion, s8.shape[-2:])], 1)

    def appearance(self, s8: torch.Tensor, s16: torch.Tensor, s32: torch.Tensor | None = None) -> torch.Tensor:
        """The GRU input's first `arch.appearance` channels: the encoder's features reduced at stride 8."""
        h, w = s8.shape[-2:]
        parts = [s8, F.interpolate(s16, size=(h, w), mode="bilinear", align_corners=False)]
        if self.arch.deep:
            if s32 is None:
                raise ValueError("this memory reads the encoder's stride-32 features: give s32")
            if s32.shape[-2] * 4 < h or s32.shape[-1] * 4 < w:
                raise ValueError(f"stride-32 features {tuple(s32.shape[-2:])} do not cover stride 8's {(h, w)}")
            parts.append(F.interpolate(s32, scale_factor=4.0, mode="bilinear", align_corners=False)[..., :h, :w])
        app = self.reduce(torch.cat(parts, 1))
        if self.training and self.arch.dropout > 0:
            app = F.dropout2d(app, self.arch.dropout)
        return app

    def motion_input(self, motion: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The GRU input's last channels: the motion maps area-resized to the stride-8 `size`."""
        if motion.shape[1] != self.arch.motion_channels:
            raise ValueError(f"the memory reads {self.arch.motion_channels} motion map(s), got {motion.shape[1]}")
        return F.interpolate(motion, size=tuple(size), mode="area")

    def step(self, x: torch.Tensor, h: torch.Tensor | None, fine: tuple[torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One online step: (new state, its logits); at stride 4 when the memory has a fine decoder and `fine`
        gives the frame's (stride-4 features, motion maps)."""
        h = self.gru(x, h)
        logits = self.online_head(h)
        if self.fine is not None and fine is not None:
            logits = self.fine(logits, h, *fine)
        return h, logits

    def refined(self, states: torch.Tensor, s4: torch.Tensor | None, motion: torch.Tensor | None) -> torch.Tensor:
        """The online head on a run's states (B, T, state, h, w): at stride 4 through the fine decoder when the
        memory has one (`s4` (B, T, 24, h4, w4), `motion` (B, T, C, h4, w4)), else at stride 8."""
        coarse = self._head(self.online_head, states)
        if self.fine is None or s4 is None:
            return coarse
        b, t = states.shape[:2]
        flat = (v.flatten(0, 1) for v in (coarse, states, s4, motion))
        return self.fine(*flat).unflatten(0, (b, t))

    def run(self, xs: torch.Tensor, offline: bool = True, s4: torch.Tensor | None = None,
            motion: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A run of inputs (B, T, C, h, w) -> online logits (B, T, 1, ...; at stride 4 with the fine decoder and
        `s4`, `motion`, as in `refined`) and, when `offline`, the bidirectional ones at stride 8 (the same GRU run
        backward from a zero state)."""
        fw, bw = self.states(xs, backward=offline)
        online = self.refined(fw, s4, motion)
        return online, None if bw is None else self.offline(fw, bw)

    def offline(self, forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
        """The offline head on both directions' states (B, T, state, h, w each): logits at stride 8."""
        return self._head(self.offline_head, torch.cat([forward, backward], 2))

    def averaged(self, xs: torch.Tensor, s4: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        """A run of inputs -> the mean probability (B, T, 1, ...) of the online head (as in `refined`) on the
        forward and on the backward states (the `average` offline mode)."""
        fw, bw = self.states(xs, backward=True)
        return (torch.sigmoid(self.refined(fw, s4, motion)) + torch.sigmoid(self.refined(bw, s4, motion))) / 2

    def states(self, xs: torch.Tensor, backward: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The GRU's states (B, T, state, h, w) run forward and, when `backward`, backward from a zero state;
        the input parts are computed once for both."""
        b, t = xs.shape[:2]
        parts = self.gru.input_part(xs.flatten(0, 1)).unflatten(0, (b, t))
        forward, h = [], None
        for k in range(t):
            h = self.gru.recur(parts[:, k], h)
            forward.append(h)
        if not backward:
            return torch.stack(forward, 1), None
        back, h = [], None
        for k in reversed(range(t)):
            h = self.gru.recur(parts[:, k], h)
            back.append(h)
        return torch.stack(forward, 1), torch.stack(back[::-1], 1)

    @staticmethod
    def _head(head: nn.Module, states: torch.Tensor) -> torch.Tensor:
        b, t = states.shape[:2]
        return head(states.flatten(0, 1)).unflatten(0, (b, t))


class FineDecoder(nn.Module):
    """Stride-8 logits and state, stride-4 appearance and motion -> stride-4 logits: the coarse map upsampled,
    plus a correction from two 3x3 convs (the coarse head keeps the decision; the decoder moves its edges)."""

    def __init__(self, state: int, s4_channels: int, motion_channels: int, width: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(s4_channels, width, 1)
        self.body = nn.Sequential(nn.Conv2d(state + width + motion_channels + 1, width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, 1, 1))

    def forward(self, logits: torch.Tensor, state: torch.Tensor, s4: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        size = s4.shape[-2:]
        up = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        h = F.interpolate(state, size=size, mode="bilinear", align_corners=False)
        if motion.shape[-2:] != size:
            motion = F.interpolate(motion, size=size, mode="bilinear", align_corners=False)
        return up + self.body(torch.cat([up, h, self.lateral(s4), motion], 1))


def build_memory(arch: MemoryArch = MemoryArch(), init: str = "imagenet") -> VisualMemoryNet:
    """A new memory: the appearance encoder from the installed ImageNet MobileNetV2 (`imagenet`) or random."""
    if init not in ("imagenet", "none"):
        raise ValueError(f"visual memory init '{init}' is not one of imagenet, none")
    model = VisualMemoryNet(arch)
    if init == "imagenet":
        from movseg_ros.pretrained import load_imagenet_mobilenet_v2

        load_imagenet_mobilenet_v2(model.encoder.blocks)
    return model


def save_memory(path, model: VisualMemoryNet, meta: dict, half: bool = True):
    """Our checkpoint with the architecture record; fp16 floats when `half` (shipped files)."""
    from movseg_ros.model_files import save_with_settings

    return save_with_settings(path, ARCH, model, model.arch.to_dict(), meta, half)


def load_memory(path) -> tuple[VisualMemoryNet, dict]:
    """The memory in `path` (eval mode, CPU, fp32) and its meta; ModelFileError names the file otherwise."""
    from movseg_ros.model_files import load_rebuilt

    return load_rebuilt(path, ARCH, "movseg train visual_memory",
                        lambda settings: VisualMemoryNet(MemoryArch(**settings)))
