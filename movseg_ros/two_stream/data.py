"""Training and held-out items for the three models, drawn from the synthetic generator.

Item: {"input": the model's tensor (see inputs.model_input), "target": torchvision detection target with
label 1 for every kept object, "seed": int}. The motion and two-stream models learn "moving" (static
objects are background, as seed 000 trains its motion stream); the appearance model learns objectness
(every object, moving or not). Flow is the generator's exact flow or one estimated by DIS from the frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.flow import DISFlow, DISFlowConfig
from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.config import SynthConfig
from movseg_ros.synth.dataset import detection_target
from movseg_ros.two_stream.inputs import check_motion_input, flow_tensor, model_input, motion_flow, rgb_tensor

FLOW_SOURCES = ("truth", "dis")
LABELS = ("moving", "objects")  # which objects are the class: the moving ones, or every object (objectness)


class SynthDetectionData(Dataset):
    """Frame 0 of 2-frame clip `seeds[i]` as a model input and its target."""

    def __init__(self, config: SynthConfig, seeds: range, kind: str, flow_source: str = "truth",
                 dis_preset: str = "medium", min_pixels: int = 16, labels: str = "", motion_input: str = "flow") -> None:
        """`labels` defaults to "objects" for the appearance model and "moving" for the others."""
        labels = labels or ("objects" if kind == "appearance" else "moving")
        if labels not in LABELS:
            raise ValueError(f"labels '{labels}' is not one of {', '.join(LABELS)}")
        if flow_source not in FLOW_SOURCES:
            raise ValueError(f"flow source '{flow_source}' is not one of {', '.join(FLOW_SOURCES)}")
        if len(seeds) < 1:
            raise ValueError(f"seed range {seeds} is empty")
        model_input(kind, torch.zeros(3, 1, 1), torch.zeros(3, 1, 1))  # checks the kind
        check_motion_input(motion_input)
        self.motion_input = motion_input
        self.config, self.seeds, self.kind = config.replace(frames=2), seeds, kind
        self.flow_source, self.dis_preset, self.min_pixels, self.labels = flow_source, dis_preset, min_pixels, labels
        self._dis: DISFlow | None = None

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = generate_clip(self.config, self.seeds[index])
        target = detection_target(clip, 0, include_static=self.labels == "objects", min_pixels=self.min_pixels)
        target = {k: target[k] for k in ("boxes", "masks", "moving")}
        target["labels"] = torch.ones(len(target["boxes"]), dtype=torch.int64)
        rgb = rgb_tensor(clip.images[0])
        flow = self.flow(clip.images[0], clip.images[1], clip.flow[0]) if self.kind != "appearance" else rgb
        return {"input": model_input(self.kind, rgb, flow), "target": target, "seed": clip.seed}

    def flow(self, a: np.ndarray, b: np.ndarray, truth: np.ndarray) -> torch.Tensor:
        """The flow image of frame a: the exact flow, or DIS's estimate from a to b."""
        if self.flow_source == "truth":
            return flow_tensor(motion_flow(truth, self.motion_input))
        if self._dis is None:  # built lazily: one per DataLoader worker
            self._dis = DISFlow(DISFlowConfig(preset=self.dis_preset, scale=1.0))
        return flow_tensor(motion_flow(self._dis(a, b), self.motion_input))


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Inputs and targets as lists (torchvision detectors take lists), seeds as a tensor."""
    return {"inputs": [i["input"] for i in items], "targets": [i["target"] for i in items],
            "seed": torch.tensor([int(i.get("seed", -1)) for i in items])}
