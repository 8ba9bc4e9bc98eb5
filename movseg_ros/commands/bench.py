"""movseg bench: speed, latency and memory measurements that print numbers (and JSON)."""

from __future__ import annotations

import argparse
import importlib

# target -> (module with add_arguments/run, help)
TARGETS = {
    "pipeline": ("movseg_ros.bench.pipeline_bench", "frames/s of flow + segmenter + tracker in one process"),
    "node": ("movseg_ros.ros.node_bench", "camera-to-/movseg/instances latency and memory of the real node"),
    "storm": ("movseg_ros.ros.storm_bench", "the real node under malformed, bomb, burst and max-size storms: "
                                           "accounting, RSS against idle, and whether it still answers"),
    "stages": ("movseg_ros.bench.stages_bench", "per-stage latency p50/p99, frames/s and peak memory of each pipeline and backend"),
    "compare": ("movseg_ros.bench.compare_bench", "this checkout against the code of a git ref, on this machine, "
                                                 "alternating: frames/s or node latency, and their ratio"),
    "egomotion": ("movseg_ros.bench.egomotion_bench", "background residual and instance J&F on fast-pan clips, "
                                                     "image-only ego-motion against the gyro prior"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (module_name, help_text) in TARGETS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sp)
        sp.set_defaults(_bench=module.run)


def run(args: argparse.Namespace) -> int:
    return int(args._bench(args) or 0)
