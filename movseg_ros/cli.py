"""The `movseg` command: one entry point with a subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
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
    "export": "Build and cache a model's accelerated form (TensorRT engine or exported graph) ahead of time.",
    "train": "Train a learned stage (flow: RAFT on the synthetic generator's exact flow).",
    "average": "Average the weights of runs of one model (a warm start and its fine-tune) into one file.",
    "flow": "Learned vs DIS optical flow: end-point error on a held-out synthetic split (epe).",
    "saliency": "The geometric pipeline's appearance prior: U^2-Net-p teacher maps (teach), single-frame IoU (score).",
    "report": "Reports against a seed's published pattern (two-stream: seed 000's ablation on our data).",
    "tune": "Search a pipeline's settings on a training set; check the best on held-aside sequences.",
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
    _log_to_stderr()
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and tools swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _log_to_stderr() -> None:
    """The package's own log lines (e.g. which accelerator runs and why) on stderr, once per process."""
    logger = logging.getLogger("movseg_ros")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
