"""`movseg train motion`: seed 000's motion stream, a Mask R-CNN on flow images with one class "moving".

Synthetic frame pairs; the first `truth_flow_iterations` steps see the generator's exact flow, then DIS
flow estimated from the frames (seed 000 §3: ground-truth flow first, then estimated flow), so the stream
is used to the estimator it meets at inference; with `davis` set, DIS flow of real frames from `davis_from`.
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
    synth_end = config.davis_from if config.davis else config.iterations  # DAVIS frames after the synthetic phases
    switch = min(config.switch_step(), synth_end)
    motion_input = config.detector_arch().motion_input
    phases = [(0, SynthDetectionData(synth, seeds, "motion", "truth", motion_input=motion_input))] if switch > 0 else []
    if switch < synth_end:
        phases.append((switch, SynthDetectionData(synth, seeds, "motion", "dis", config.dis_preset,
                                                  motion_input=motion_input)))
    if config.davis:
        phases.append((synth_end, config.davis_data("motion")))
    val = config.davis_data("motion", train=False) if config.davis else \
        SynthDetectionData(synth, held, "motion", "dis", config.dis_preset, motion_input=motion_input)
    model = build_model("motion", config.detector_arch(), config.min_size)
    init = config.init_model(model)
    return detector_plan(config, "motion", "motion", model, phases, val,
                         meta={"init": init, "flow": {"truth_steps": switch, "estimated": f"dis {config.dis_preset}",
                                                      "davis_steps": config.iterations - synth_end if config.davis else 0}})


def train(config: MotionTrainConfig, command: str = "") -> dict[str, Any]:
    return train_detector(config, plan, command)
