"""`movseg train motion`: seed 000's motion stream, a Mask R-CNN on flow images with one class "moving".

Synthetic frame pairs; the first `truth_flow_iterations` steps see the generator's exact flow, the rest
DIS flow estimated from the frames (seed 000 §3: ground-truth flow first, then estimated flow), so the
stream is used to the estimator it meets at inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from movseg_ros.flow import DIS_PRESETS
from movseg_ros.training.detector_loop import DetectorTrainConfig, detector_plan, train_detector
from movseg_ros.training.loop import StagePlan
from movseg_ros.two_stream.data import SynthDetectionData
from movseg_ros.two_stream.weights import build_model


@dataclass(frozen=True)
class MotionTrainConfig(DetectorTrainConfig):
    """The shared settings, plus when the flow switches from exact to estimated."""

    truth_flow_iterations: int = -1  # steps on exact flow before DIS flow; -1: the first half of the run
    dis_preset: str = "medium"  # DIS preset of the estimated flow (the node's two_stream flow default)
    out_dir: str = "out/train/motion"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.need(self.truth_flow_iterations >= -1, "truth_flow_iterations", f"must be >= -1, got {self.truth_flow_iterations}")
        self.need(self.dis_preset in DIS_PRESETS, "dis_preset", f"'{self.dis_preset}' is not one of {', '.join(DIS_PRESETS)}")

    def switch_step(self) -> int:
        n = self.truth_flow_iterations
        return self.iterations // 2 if n < 0 else min(n, self.iterations)


CONFIG = MotionTrainConfig


def plan(config: MotionTrainConfig) -> StagePlan:
    synth = config.synth_config()
    seeds = range(*config.train_seeds)
    held = range(*config.heldout_seeds)
    phases = [(0, SynthDetectionData(synth, seeds, "motion", "truth"))]
    if config.switch_step() < config.iterations:
        phases.append((config.switch_step(), SynthDetectionData(synth, seeds, "motion", "dis", config.dis_preset)))
    return detector_plan(config, "motion", "motion", build_model("motion", config.detector_arch(), config.min_size),
                         phases, SynthDetectionData(synth, held, "motion", "dis", config.dis_preset),
                         meta={"flow": {"truth_steps": config.switch_step(), "estimated": f"dis {config.dis_preset}"}})


def train(config: MotionTrainConfig, command: str = "") -> dict[str, Any]:
    return train_detector(config, plan, command)
