"""What each model kind takes: RGB, the flow image, or both stacked (6 channels), as float tensors in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from movseg_ros.ego_motion import camera_residual
from movseg_ros.flow import flow_to_image

MIN_FLOW_RANGE = 2.0  # px at the model's resolution: a frame whose largest motion is smaller is not stretched to full range


def flow_tensor(flow: np.ndarray | Tensor, min_range: float = MIN_FLOW_RANGE) -> Tensor:
    """Seed 000's flow image as (3, H, W) float in [0, 1]: angle / 2pi, magnitude / max(largest, min_range), 0.

    `flow` is the motion at this frame's pixels (H, W, 2) or (2, H, W), pixels, x then y.
    """
    f = flow.detach().cpu().numpy() if isinstance(flow, Tensor) else np.asarray(flow)
    if f.ndim != 3 or 2 not in (f.shape[0], f.shape[-1]):
        raise ValueError(f"flow must be (H, W, 2) or (2, H, W), got shape {f.shape}")
    if f.shape[-1] != 2:
        f = np.moveaxis(f, 0, -1)
    f = np.nan_to_num(f.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = max(float(np.hypot(f[..., 0], f[..., 1]).max(initial=0.0)), float(min_range))
    image = flow_to_image(f, max_magnitude=top)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def check_motion_input(motion_input: str) -> None:
    """ValueError unless `motion_input` is one the motion stream can be given."""
    from movseg_ros.two_stream.arch import MOTION_INPUTS

    if motion_input not in MOTION_INPUTS:
        raise ValueError(f"motion input '{motion_input}' is not one of {', '.join(MOTION_INPUTS)}")


def motion_flow(flow: np.ndarray, motion_input: str) -> np.ndarray:
    """The (H, W, 2) flow the motion stream encodes: `flow` itself ("flow"), or its part that the camera's fitted
    homography does not explain ("residual"), so a panning camera leaves static structure still."""
    if motion_input == "residual":
        return camera_residual(np.ascontiguousarray(flow, dtype=np.float32))[0]
    check_motion_input(motion_input)
    return flow


def rgb_tensor(image: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float in [0, 1]."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def model_input(kind: str, rgb: Tensor, flow_image: Tensor) -> Tensor:
    """The tensor model `kind` takes: appearance RGB, motion the flow image, two_stream both (6 channels)."""
    if kind == "appearance":
        return rgb
    if kind == "motion":
        return flow_image
    if kind == "two_stream":
        return torch.cat([rgb, flow_image], 0)
    raise ValueError(f"model kind '{kind}' is not one of appearance, motion, two_stream")
