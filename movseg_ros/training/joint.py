"""`movseg train joint`: seed 000's two-stream model, initialised from the motion and appearance models.

The motion backbone comes from the motion model; the appearance backbone, RPN and box/mask heads from
the objectness model, whose RPN and heads also become the (always frozen) static-object branch. The
fusion convolutions are new. Freezing follows the paper's Table 3: appearance backbone, motion
backbone, mask head (all frozen in the final model; the fusion, RPN and box head train).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from movseg_ros.flow import DIS_PRESETS
from movseg_ros.model_files import ModelFileError
from movseg_ros.training.common import TrainConfigError
from movseg_ros.training.detector_loop import DetectorTrainConfig, detector_plan, train_detector
from movseg_ros.training.loop import StagePlan
from movseg_ros.two_stream.arch import DetectorArch
from movseg_ros.two_stream.data import FLOW_SOURCES, SynthDetectionData
from movseg_ros.two_stream.models import DETECTOR_SOURCES, two_stream_from_streams
from movseg_ros.two_stream.weights import build_model, load_model


@dataclass(frozen=True)
class JointTrainConfig(DetectorTrainConfig):
    """The shared settings, plus the stage models to start from and what stays frozen."""

    motion_weights: str = ""  # movseg train motion's weights ("" starts the motion backbone untrained)
    appearance_weights: str = ""  # movseg train appearance's weights ("" starts those parts untrained)
    freeze_appearance: bool = True  # seed 000 Table 3 "+ Freeze appearance"
    freeze_motion: bool = True  # "+ Freeze motion"
    freeze_mask: bool = True  # "+ Freeze mask": the mask head keeps the objectness model's weights
    detector_from: str = "appearance"  # the moving RPN and box head start from: appearance (seed 000) | motion
    #   (the motion model's, with the fusion passing motion features on: the joint starts as the motion detector)
    flow_source: str = "dis"  # flow the joint model trains on: dis (estimated, as at inference) | truth
    dis_preset: str = "medium"
    out_dir: str = "out/train/joint"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.need(self.flow_source in FLOW_SOURCES, "flow_source", f"'{self.flow_source}' is not one of {', '.join(FLOW_SOURCES)}")
        self.need(self.dis_preset in DIS_PRESETS, "dis_preset", f"'{self.dis_preset}' is not one of {', '.join(DIS_PRESETS)}")
        self.need(self.detector_from in DETECTOR_SOURCES, "detector_from",
                  f"'{self.detector_from}' is not one of {', '.join(DETECTOR_SOURCES)}")


CONFIG = JointTrainConfig


def _stream(path: str, kind: str, arch_wanted: DetectorArch, min_size: int) -> nn.Module | None:
    """The stream model in `path`, refused (named) when its architecture is not the joint run's. Settings of the
    joint model alone (fusion_layers, mask_features) do not matter, nor the appearance model's motion_input."""
    if not path:
        return None
    model, meta = load_model(path, kind, min_size)
    have = dataclasses.replace(DetectorArch.from_dict(meta.get("arch_settings") or {}),
                               fusion_layers=arch_wanted.fusion_layers, mask_features=arch_wanted.mask_features)
    if kind == "appearance":
        have = dataclasses.replace(have, motion_input=arch_wanted.motion_input)
    if have != arch_wanted:
        raise ModelFileError(path, f"{kind} weights are of architecture {have.to_dict()}, but the joint "
                                   f"run builds {arch_wanted.to_dict()} (set arch to match)")
    return model


def plan(config: JointTrainConfig) -> StagePlan:
    if not config.appearance_weights and (config.freeze_appearance or config.freeze_mask):
        raise TrainConfigError("joint: freezing the appearance backbone or the mask head needs appearance_weights "
                               "(frozen untrained weights would never learn)")
    if not config.motion_weights and config.freeze_motion:
        raise TrainConfigError("joint: freeze_motion needs motion_weights (a frozen untrained backbone never learns)")
    arch = config.detector_arch()
    model = build_model("two_stream", arch, config.min_size)
    motion = _stream(config.motion_weights, "motion", arch, config.min_size)
    appearance = _stream(config.appearance_weights, "appearance", arch, config.min_size)
    init = config.init_model(model)  # then overwritten by the stream models' backbones where given
    if config.detector_from == "motion" and motion is None:
        raise TrainConfigError("joint: detector_from motion needs motion_weights")
    two_stream_from_streams(model, motion, appearance, config.detector_from)
    frozen: list[nn.Module] = [model.static_rpn, model.static_roi_heads]
    if config.freeze_appearance:
        frozen.append(model.appearance_backbone)
    if config.freeze_motion:
        frozen.append(model.motion_backbone)
    if config.freeze_mask:
        frozen += [model.roi_heads.mask_head, model.roi_heads.mask_predictor]
    synth = config.synth_config()
    phases: list[tuple[int, Any]] = []
    if not config.davis or config.davis_from > 0:
        phases.append((0, SynthDetectionData(synth, range(*config.train_seeds), "two_stream", config.flow_source,
                                             config.dis_preset, motion_input=arch.motion_input)))
    if config.davis:
        phases.append((config.davis_from, config.davis_data("two_stream")))
        val = config.davis_data("two_stream", train=False)
    else:
        val = SynthDetectionData(synth, range(*config.heldout_seeds), "two_stream", "dis", config.dis_preset,
                                 motion_input=arch.motion_input)
    return detector_plan(config, "joint", "two_stream", model, phases, val, frozen=frozen,
                     meta={"init": {"motion": config.motion_weights or None, "appearance": config.appearance_weights or None,
                                    "backbones": init},
                           "detector_from": config.detector_from,
                           "frozen": {"appearance": config.freeze_appearance, "motion": config.freeze_motion,
                                      "mask": config.freeze_mask},
                           "flow": config.flow_source if config.flow_source == "truth" else f"dis {config.dis_preset}"})


def train(config: JointTrainConfig, command: str = "") -> dict[str, Any]:
    return train_detector(config, plan, command)
