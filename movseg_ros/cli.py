"""The `movseg` command: one entry point with a subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module under movseg_ros.commands exposing add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "run": "Segment a video file, an image folder or a DAVIS sequence offline.",
    "demo": "Run the node on a built-in scene over real ROS topics and summarise.",
    "eval": "Score predictions or a pipeline against ground truth (DAVIS, FBMS, MOTS metrics).",
    "replay": "Replay a bag through the pipeline (in-process) or the node (live) and score it.",
    "bag": "Write frames into a rosbag2 bag (make) or describe one (info).",
    "synth": "Generate synthetic moving-object clips with exact flow and ids.",
    "bench": "Measure speed, latency and memory.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="movseg", description="Segment and track independently moving objects.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"movseg_ros.commands.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
