"""Synthetic moving-object clips with exact optical flow, instance ids and moving flags.

ROS-free and torch-free (the torch Datasets live in movseg_ros.synth.dataset).
"""

from movseg_ros.synth.clip import Clip, generate_clip
from movseg_ros.synth.config import EVENTS, PRESETS, SynthConfig, SynthConfigError, preset

__all__ = ["Clip", "EVENTS", "PRESETS", "SynthConfig", "SynthConfigError", "generate_clip", "preset"]
