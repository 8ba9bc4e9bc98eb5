"""The architecture settings a STEm-Seg checkpoint is rebuilt from (recorded in its meta["arch_settings"])."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from movseg_ros.stem_seg.mixing import FREE_STD, MIXINGS
from movseg_ros.two_stream.arch import ArchError, DetectorArch

SCALES = (32, 16, 8, 4)  # FPN strides the decoders read, coarse to fine (the order of the per-scale tuples)
_TUPLES = ("decoder_channels", "temporal_pools")
MOTION_CHANNELS = 3  # residual motion x, y, magnitude a frame (stem_seg/motion.py)


@dataclass(frozen=True)
class StemSegArch:
    """Backbone, mixing function and temporal squeeze-expand decoder sizes (seed 004 §3.1, Fig. 3).

    `light()` (the default) is CPU-sized: MobileNetV3-FPN 64 wide with group norm (trains from scratch at batch
    1-2), decoders (64, 64, 48, 48) wide at strides (32, 16, 8, 4). `paper()` is the authors' sizes on our
    largest backbone (R-50-FPN 256 wide, decoders (256, 256, 128, 128), 32 GN groups; the paper uses R-101).
    temporal_pools[k] is how many 2x1x1 average poolings scale k goes through (coarse scales pooled more).
    """

    backbone: str = "mobilenet_v3"
    norm: str = "group_norm"  # backbone normalisation; the decoders always use group norm
    fpn_channels: int = 64
    mixing: str = "xytf"
    decoder_channels: tuple[int, int, int, int] = (64, 64, 48, 48)
    temporal_pools: tuple[int, int, int, int] = (3, 2, 1, 0)
    gn_groups: int = 8
    free_std: float = FREE_STD  # v_free: the fixed std of the free embedding dimensions
    motion_channels: int = 0  # 0: RGB clips (seed 004); 3: each frame also carries its residual motion (stem_seg/motion.py)

    def __post_init__(self) -> None:
        self.detector_arch()  # validates backbone, norm and fpn_channels (ArchError names the setting)
        if self.mixing not in MIXINGS:
            raise ArchError(f"mixing '{self.mixing}' is not one of {', '.join(MIXINGS)}")
        for name in _TUPLES:
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != len(SCALES) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise ArchError(f"{name} must be {len(SCALES)} integers (strides {SCALES}), got {value!r}")
        if not isinstance(self.gn_groups, int) or self.gn_groups < 1:
            raise ArchError(f"gn_groups must be an integer >= 1, got {self.gn_groups!r}")
        bad = [c for c in self.decoder_channels if c < self.gn_groups or c % self.gn_groups]
        if bad:
            raise ArchError(
                f"decoder_channels {self.decoder_channels} must be multiples of gn_groups={self.gn_groups}; bad: {bad}"
            )
        if not all(0 <= p <= 4 for p in self.temporal_pools):
            raise ArchError(f"temporal_pools must each be in [0, 4], got {self.temporal_pools}")
        if any(a < b for a, b in zip(self.temporal_pools, self.temporal_pools[1:])):
            raise ArchError(
                f"temporal_pools {self.temporal_pools} must not increase from stride 32 to stride 4 "
                f"(finer scales are pooled less in time, §3.1)"
            )
        if self.motion_channels not in (0, MOTION_CHANNELS) or isinstance(self.motion_channels, bool):
            raise ArchError(f"motion_channels must be 0 (RGB only) or {MOTION_CHANNELS} (RGB + residual motion), "
                            f"got {self.motion_channels!r}")
        if not isinstance(self.free_std, (int, float)) or not self.free_std > 0:
            raise ArchError(f"free_std must be a number > 0, got {self.free_std!r}")

    def detector_arch(self) -> DetectorArch:
        """The backbone part as the two-stream DetectorArch that build_backbone takes (its head sizes unused)."""
        return DetectorArch(backbone=self.backbone, norm=self.norm, fpn_channels=self.fpn_channels)

    @classmethod
    def light(cls) -> "StemSegArch":
        return cls()

    @classmethod
    def paper(cls) -> "StemSegArch":
        return cls(backbone="resnet50", norm="frozen_bn", fpn_channels=256, decoder_channels=(256, 256, 128, 128),
                   gn_groups=32)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StemSegArch":
        """Settings from a to_dict() record; unknown keys are an ArchError (lists become tuples)."""
        if not isinstance(d, dict):
            raise ArchError(f"architecture settings must be a dict, got a {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ArchError(f"unknown architecture setting(s) {unknown}; known: {', '.join(sorted(names))}")
        values = {k: tuple(v) if k in _TUPLES and isinstance(v, list) else v for k, v in d.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
