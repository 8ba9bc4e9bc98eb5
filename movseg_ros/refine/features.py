"""The maps the geometric segmenter makes for a frame, and their stacking into the refinement's input."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# input channels of the refinement network, in order
FEATURES = ("evidence", "motion_z", "fb_fail", "carried", "colour", "salient", "fused", "red", "green", "blue")


@dataclass(frozen=True)
class EvidenceMaps:
    """One frame's maps at the work resolution (HxW float32 in [0, 1] unless said) and its RGB (HxWx3 uint8)."""

    evidence: np.ndarray  # motion evidence after the forward-backward check
    motion_z: np.ndarray  # residual flow in robust sigmas, any value >= 0
    fb_fail: np.ndarray  # bool (or 0/1): where the forward-backward check failed
    carried: np.ndarray  # last frame's probability moved along the flow (0 on a stream's second frame)
    colour: np.ndarray  # the probability after the colour model
    salient: np.ndarray  # the saliency map (0 without the appearance prior or before its first map)
    fused: np.ndarray  # the hand-made result: what the instances are cut from without refinement
    rgb: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.fused.shape[:2]


def input_size(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) the network sees for work maps of `shape` (h, w)."""
    return max(4, int(round(shape[1] * scale))), max(4, int(round(shape[0] * scale)))


def stack_features(maps: EvidenceMaps, scale: float = 0.5) -> np.ndarray:
    """CxhXw float32 input of the network: the FEATURES at `scale` of the work size (area-averaged)."""
    size = input_size(maps.shape, scale)
    planes = [maps.evidence, np.log1p(maps.motion_z) / 4.0, maps.fb_fail, maps.carried, maps.colour, maps.salient,
              maps.fused]
    planes += [maps.rgb[..., c].astype(np.float32) / 255.0 for c in range(3)]
    out = np.empty((len(FEATURES), size[1], size[0]), np.float32)
    for i, plane in enumerate(planes):
        out[i] = cv2.resize(np.asarray(plane, np.float32), size, interpolation=cv2.INTER_AREA)
    return out
