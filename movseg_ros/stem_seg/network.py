"""Seed 004 §3.1 network: a per-frame 2D backbone + FPN and two temporal squeeze-expand (TSE) decoders.

Decoder 1 gives the embedding offsets and log-variances, decoder 2 the seediness heat map, all at stride 4.
Checkpoints go through movseg_ros.model_files with arch "stemseg" and the StemSegArch in meta["arch_settings"].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from movseg_ros.model_files import ModelFileError, load_into, load_with_settings, save_with_settings
from movseg_ros.stem_seg.arch import StemSegArch
from movseg_ros.stem_seg.mixing import embedding_dims, full_variances, mix, predicted_dims
from movseg_ros.two_stream.arch import ArchError
from movseg_ros.two_stream.backbones import build_backbone

ARCH_NAME = "stemseg"
FPN_KEYS = ("3", "2", "1", "0")  # strides 32, 16, 8, 4: the order of StemSegArch's per-scale tuples
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv_block(in_channels: int, out_channels: int, groups: int) -> nn.Sequential:
    """3x3x3 convolution, group norm, ReLU: the decoders' unit layer."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(groups, out_channels),
        nn.ReLU(inplace=True),
    )


class _Squeeze(nn.Module):
    """One scale's squeeze path: a conv block, then `pools` x (2x1x1 average pooling, conv block).

    Pooling is skipped once the clip is down to one frame and rounds up on odd lengths (ceil mode), so any T >= 1
    works and no frame is dropped.
    """

    def __init__(self, in_channels: int, channels: int, pools: int, groups: int) -> None:
        super().__init__()
        self.entry = _conv_block(in_channels, channels, groups)
        self.pool = nn.AvgPool3d((2, 1, 1), stride=(2, 1, 1), ceil_mode=True)
        self.steps = nn.ModuleList(_conv_block(channels, channels, groups) for _ in range(pools))

    def forward(self, x: Tensor) -> Tensor:
        x = self.entry(x)
        for step in self.steps:
            if x.shape[2] >= 2:
                x = self.pool(x)
            x = step(x)
        return x


class TSEDecoder(nn.Module):
    """Temporal squeeze-expand decoder: squeeze each scale in time, then merge top-down, expanding in time and space.

    The coarser path is projected to the finer scale's width (1x1x1), upsampled trilinearly to the finer path's
    (t, h, w), added, and refined by a conv block; the stride-4 result is brought to exactly T frames and `head`
    (a 1x1x1 convolution) gives `out_channels`.
    """

    def __init__(self, in_channels: int, arch: StemSegArch, out_channels: int) -> None:
        super().__init__()
        ch, groups = arch.decoder_channels, arch.gn_groups
        self.squeezes = nn.ModuleList(
            _Squeeze(in_channels, c, p, groups) for c, p in zip(ch, arch.temporal_pools)
        )
        self.projections = nn.ModuleList(nn.Conv3d(ch[k - 1], ch[k], 1) for k in range(1, len(ch)))
        self.merges = nn.ModuleList(_conv_block(ch[k], ch[k], groups) for k in range(1, len(ch)))
        self.head = nn.Conv3d(ch[-1], out_channels, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        """features: (B, C, T, h_k, w_k) per scale, coarse to fine -> (B, out_channels, T, h_4, w_4)."""
        frames = features[-1].shape[2]
        x = self.squeezes[0](features[0])
        for k in range(1, len(features)):
            y = self.squeezes[k](features[k])
            x = F.interpolate(self.projections[k - 1](x), size=y.shape[2:], mode="trilinear", align_corners=False)
            x = self.merges[k - 1](x + y)
        if x.shape[2] != frames:
            x = F.interpolate(x, size=(frames, *x.shape[3:]), mode="trilinear", align_corners=False)
        return self.head(x)


class MotionEncoder(nn.Module):
    """Residual-motion channels -> one addition to each FPN level: two stride-2 3x3 convs to stride 4, area
    pooling to the coarser levels, and a 1x1 projection a level, zero at the start so that a warm start from an
    RGB-only network begins as that network."""

    def __init__(self, in_channels: int, fpn_channels: int, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width // 2, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.projections = nn.ModuleList(nn.Conv2d(width, fpn_channels, 1) for _ in FPN_KEYS)
        for p in self.projections:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def forward(self, motion: Tensor, levels: list[Tensor]) -> list[Tensor]:
        """motion (N, M, H, W), levels (N, C, h_k, w_k) coarse to fine -> the levels plus the motion's share."""
        m = self.stem(motion)
        return [level + proj(F.adaptive_avg_pool2d(m, level.shape[-2:]))
                for level, proj in zip(levels, self.projections)]


class StemSegNet(nn.Module):
    """Clip (B, T, 3 + M, H, W) in [0, 1] -> embeddings, variances (B, E, T, H4, W4) and seediness (B, T, H4, W4).

    M = arch.motion_channels (0, or the residual motion of stem_seg/motion.py appended to each frame's RGB).
    H4, W4 = ceil(H / 4), ceil(W / 4), the backbone's stride-4 grid; any H, W and T >= 1 work (the FPN and the
    decoders resize to each level's exact size, so nothing is padded).
    """

    def __init__(self, arch: StemSegArch) -> None:
        super().__init__()
        self.arch = arch
        self.backbone = build_backbone(arch.detector_arch())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.embedding_dims = embedding_dims(arch.mixing)
        self.embedding_decoder = TSEDecoder(
            arch.fpn_channels, arch, self.embedding_dims + predicted_dims(arch.mixing)
        )
        self.seediness_decoder = TSEDecoder(arch.fpn_channels, arch, 1)
        self.motion = MotionEncoder(arch.motion_channels, arch.fpn_channels) if arch.motion_channels else None

    @property
    def in_channels(self) -> int:
        """Channels a clip frame carries: RGB, then the residual motion when the network reads it."""
        return 3 + self.arch.motion_channels

    def features(self, clip: Tensor) -> list[Tensor]:
        """FPN maps at strides 32, 16, 8, 4 of every frame, stacked in time: (B, C, T, h, w) each."""
        b, t = clip.shape[:2]
        frames = clip.flatten(0, 1)
        levels = self.backbone((frames[:, :3] - self.mean) / self.std)
        levels = [levels[k] for k in FPN_KEYS]
        if self.motion is not None:
            levels = self.motion(frames[:, 3:], levels)
        return [level.unflatten(0, (b, t)).transpose(1, 2) for level in levels]

    def forward(self, clip: Tensor) -> dict[str, Tensor]:
        c = self.in_channels
        if clip.dim() != 5 or clip.shape[2] != c or min(clip.shape) < 1:
            what = "3" if c == 3 else f"3 + {c - 3} (RGB + residual motion)"
            raise ValueError(f"StemSegNet: clip must be (B, T, {what}, H, W) with T >= 1, got {tuple(clip.shape)}")
        features = self.features(clip)
        raw = self.embedding_decoder(features)
        e = self.embedding_dims
        mixing = self.arch.mixing
        embeddings = torch.stack([mix(o, mixing) for o in raw[:, :e]])
        variances = torch.stack([full_variances(v, mixing, self.arch.free_std) for v in raw[:, e:]])
        seediness = torch.sigmoid(self.seediness_decoder(features)[:, 0])
        return {"embeddings": embeddings, "variances": variances, "seediness": seediness}


class StemSegOutputs(nn.Module):
    """The network with a tuple output (embeddings, variances, seediness), for tracers and accelerators."""

    def __init__(self, model: StemSegNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model(clip)
        return out["embeddings"], out["variances"], out["seediness"]


def upsample_outputs(out: dict[str, Tensor], size: tuple[int, int]) -> dict[str, Tensor]:
    """The network's outputs bilinearly resized per frame to `size` = (H, W), e.g. the input size, for clustering.

    Bilinear interpolation keeps variances positive (free dims unchanged) and seediness in [0, 1]; the embeddings'
    coordinate part is interpolated with the rest, which matches full-resolution coordinates up to the border
    half-cell (align_corners=False clamps there).
    """
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"upsample_outputs: size must be (H, W) positive, got {size}")
    size = (int(size[0]), int(size[1]))

    def resize(x: Tensor) -> Tensor:  # (B, C, T, h, w) -> (B, C, T, H, W)
        b, c, t = x.shape[:3]
        y = F.interpolate(x.reshape(b, c * t, *x.shape[3:]), size=size, mode="bilinear", align_corners=False)
        return y.reshape(b, c, t, *size)

    return {
        "embeddings": resize(out["embeddings"]),
        "variances": resize(out["variances"]),
        "seediness": resize(out["seediness"][:, None])[:, 0],
    }


def build_stemseg(arch: StemSegArch | None = None) -> StemSegNet:
    """An untrained STEm-Seg network (random weights; nothing is downloaded); the light CPU model by default."""
    return StemSegNet(arch or StemSegArch.light())


def save_stemseg(
    path: Path | str, model: StemSegNet, arch: StemSegArch, meta: dict[str, Any], half: bool = True
) -> Path:
    """Write `model` as a "stemseg" checkpoint with its settings in meta["arch_settings"]; fp16 floats when `half`."""
    if model.arch != arch:
        raise ValueError(f"save_stemseg {path}: the model was built with {model.arch}, not the given {arch}")
    return save_with_settings(path, ARCH_NAME, model, arch.to_dict(), meta, half)


def load_stemseg(path: Path | str) -> tuple[StemSegNet, dict[str, Any]]:
    """The network in `path` in eval mode on the CPU (fp32), and the file's meta.

    ModelFileError names the file for: no such file, not a torch file, another architecture, no or bad
    architecture record, or tensors that do not fit the rebuilt network.
    """
    settings, state, meta = load_with_settings(path, ARCH_NAME, "movseg train stemseg")
    try:
        arch = StemSegArch.from_dict(settings)
    except (ArchError, TypeError) as e:
        raise ModelFileError(path, f"bad architecture record: {e}") from None
    model = build_stemseg(arch)
    load_into(model, state, path, ARCH_NAME)
    model.eval()
    return model, meta
