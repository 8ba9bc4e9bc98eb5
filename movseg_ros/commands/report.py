"""movseg report <what>: tables, JSON and a figure that put our models next to a seed's published pattern.

  two-stream  seed 000's ablation (Tables 1-3): motion-only, appearance-only and joint det/mask mAP@0.5
              on the held-out synthetic split, and DAVIS J of pipeline two_stream vs geometric
  stemseg     seed 004's near-online stem_seg next to geometric (and two_stream): instance J&F, binary J and
              id switches on held-out synthetic streams, DAVIS J, and frames/s with latency
  visual-memory  seed 003's MP-Net alone, memory online and memory offline: DAVIS J and F next to the other
              pipelines, and frames/s at 640x480
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from movseg_ros.datasets.davis import default_root

def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="report", metavar="REPORT", required=True)
    for name, (help_text, add, run_report) in REPORTS.items():
        q = sub.add_parser(name, help=help_text, description=help_text)
        add(q)
        q.set_defaults(_report=run_report)


def run(args: argparse.Namespace) -> int:
    return int(args._report(args) or 0)


def _add_davis(p: argparse.ArgumentParser) -> None:
    """The DAVIS part's options, the same in every report."""
    p.add_argument("--davis", type=Path, help="DAVIS root (default: movseg eval's, $MOVSEG_DAVIS or "
                                              "../shared/data/davis2016)")
    p.add_argument("--sequences", nargs="*", help="only these DAVIS sequences")
    p.add_argument("--max-frames", type=int, default=0, help="score only the first N frames of each sequence (0: all)")
    p.add_argument("--no-davis", action="store_true", help="skip the DAVIS comparison")


def _add_outputs(p: argparse.ArgumentParser, plot_help: str) -> None:
    """Where the models run and where the JSON and the figure go, the same in every report."""
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="where the models run (default cpu)")
    p.add_argument("--json", type=Path, help="write everything here as JSON")
    p.add_argument("--plot", type=Path, help=plot_help)


def _add_two_stream(p: argparse.ArgumentParser) -> None:
    p.add_argument("--motion", required=True, type=Path, help="motion-stream weights (movseg train motion)")
    p.add_argument("--appearance", required=True, type=Path, help="appearance (objectness) weights")
    p.add_argument("--joint", required=True, type=Path,
                   help="two-stream weights (movseg train joint); their meta gives the held-out split")
    p.add_argument("--images", type=int, default=200, help="held-out images scored per row (default 200)")
    p.add_argument("--heldout-seeds", metavar="LO:HI",
                   help="clip seeds to score instead of the joint weights' held-out range")
    p.add_argument("--dis-preset", default="medium", help="DIS preset of the estimated flow (default medium)")
    _add_davis(p)
    _add_outputs(p, "PNG: det/mask mAP bars per row, J per pipeline")


def _run_two_stream(args: argparse.Namespace) -> int:
    from movseg_ros.reports.common import parse_seed_range
    from movseg_ros.two_stream.report import ReportSettings, format_table, plot_report, two_stream_report

    try:
        if args.max_frames < 0:
            raise ValueError(f"--max-frames must be >= 0, got {args.max_frames}")
        settings = ReportSettings(
            motion=args.motion, appearance=args.appearance, joint=args.joint, images=args.images,
            heldout_seeds=parse_seed_range(args.heldout_seeds) if args.heldout_seeds else None,
            davis=None if args.no_davis else (args.davis or default_root()),
            sequences=tuple(args.sequences or ()), max_frames=args.max_frames, device=args.device,
            dis_preset=args.dis_preset, command=_command_line(
                args, ["two-stream", "--motion", str(args.motion), "--appearance", str(args.appearance),
                       "--joint", str(args.joint), "--images", str(args.images)],
                ("heldout_seeds", "dis_preset", "davis", "max_frames", "device", "json", "plot")))
        report = two_stream_report(settings)
    except (ValueError, FileNotFoundError) as e:  # ModelFileError, ReportError, DatasetError, ... are ValueErrors
        print(f"movseg report: error: {e}", file=sys.stderr)
        return 2
    return _write(report, format_table, plot_report, args)


def _add_stemseg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, type=Path,
                   help="STEm-Seg weights (movseg train stemseg); their meta gives the held-out split")
    p.add_argument("--joint", type=Path, help="two-stream weights: also run pipeline two_stream")
    p.add_argument("--clips", type=int, default=20, help="held-out synthetic clips scored (default 20)")
    p.add_argument("--frames", type=int, default=24,
                   help="frames a clip (default 24: several stem_seg clips are stitched in each stream)")
    p.add_argument("--heldout-seeds", metavar="LO:HI", help="clip seeds to score instead of the weights' held-out range")
    p.add_argument("--config", type=Path,
                   help="YAML whose stem_seg settings (seed_threshold, ...) the stem_seg column runs with; "
                        "--weights, eager and --device still hold (e.g. config/stem_seg_several_movers.yaml)")
    p.add_argument("--geometric-config", type=Path,
                   help="pipeline YAML the geometric column runs with (default: the shipped defaults; e.g. "
                        "config/geometric_no_memory.yaml)")
    _add_davis(p)
    p.add_argument("--width", type=int, default=640, help="speed part: frame width (default 640)")
    p.add_argument("--height", type=int, default=480, help="speed part: frame height (default 480)")
    p.add_argument("--speed-frames", type=int, default=30, help="speed part: frames in the timed stream (default 30)")
    p.add_argument("--rate", type=float, default=30.0,
                   help="speed part: the stream's frame rate in Hz, the unit of the near-online frame delay (default 30)")
    _add_outputs(p, "PNG: instance J&F and binary J, DAVIS J and frames/s per pipeline")


def _run_stemseg(args: argparse.Namespace) -> int:
    from movseg_ros.reports.common import parse_seed_range
    from movseg_ros.reports.stemseg import StemSegReportSettings, stemseg_report
    from movseg_ros.reports.stemseg_view import format_table, plot_report

    try:
        settings = StemSegReportSettings(
            weights=args.weights, joint=args.joint, clips=args.clips, frames=args.frames,
            heldout_seeds=parse_seed_range(args.heldout_seeds) if args.heldout_seeds else None,
            davis=None if args.no_davis else (args.davis or default_root()), sequences=tuple(args.sequences or ()),
            max_frames=args.max_frames, width=args.width, height=args.height, speed_frames=args.speed_frames,
            rate_hz=args.rate, device=args.device, stem_seg_config=args.config,
            geometric_config=args.geometric_config, command=_command_line(
                args, ["stemseg", "--weights", str(args.weights)],
                ("joint", "clips", "frames", "heldout_seeds", "config", "geometric_config", "davis", "max_frames", "width", "height",
                 "speed_frames", "rate", "device", "json", "plot")))
        report = stemseg_report(settings)
    except (ValueError, FileNotFoundError) as e:  # ModelFileError, ReportError, DatasetError, ... are ValueErrors
        print(f"movseg report: error: {e}", file=sys.stderr)
        return 2
    return _write(report, format_table, plot_report, args)


def _add_visual_memory(p: argparse.ArgumentParser) -> None:
    from movseg_ros.reports.visual_memory import OTHERS

    p.add_argument("--weights", type=Path, help="memory weights (default: the shipped models/visual_memory.pt)")
    p.add_argument("--mpnet", type=Path, help="MP-Net weights (default: the shipped models/mpnet.pt)")
    p.add_argument("--others", nargs="*", choices=OTHERS, default=["geometric", "two_stream"],
                   help="other pipelines beside it, shipped weights (default: geometric two_stream)")
    _add_davis(p)
    p.add_argument("--width", type=int, default=640, help="speed part: frame width (default 640)")
    p.add_argument("--height", type=int, default=480, help="speed part: frame height (default 480)")
    p.add_argument("--speed-frames", type=int, default=30, help="speed part: frames in the timed stream (default 30)")
    p.add_argument("--json", type=Path, help="write everything here as JSON")
    p.add_argument("--plot", type=Path, help="PNG: DAVIS J and F and frames/s per pipeline and mode")


def _run_visual_memory(args: argparse.Namespace) -> int:
    from movseg_ros.reports.visual_memory import VisualMemoryReportSettings, format_table, plot_report, visual_memory_report

    try:
        settings = VisualMemoryReportSettings(
            weights=args.weights, mpnet=args.mpnet, others=tuple(args.others),
            davis=None if args.no_davis else (args.davis or default_root()), sequences=tuple(args.sequences or ()),
            max_frames=args.max_frames, width=args.width, height=args.height, speed_frames=args.speed_frames,
            command=_command_line(args, ["visual-memory"], ("weights", "mpnet", "davis", "max_frames", "width", "height",
                                                           "speed_frames", "json", "plot")))
        report = visual_memory_report(settings)
    except (ValueError, FileNotFoundError) as e:  # ModelFileError, DatasetError, ... are ValueErrors
        print(f"movseg report: error: {e}", file=sys.stderr)
        return 2
    return _write(report, format_table, plot_report, args)


def _write(report: Any, format_table: Callable, plot_report: Callable, args: argparse.Namespace) -> int:
    """The table on stdout, then the figure and the JSON where asked for."""
    print(format_table(report))
    if args.plot:
        print(f"plot: {plot_report(report, args.plot)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    return 0


def _command_line(args: argparse.Namespace, head: list[str], options: tuple[str, ...]) -> str:
    """`movseg report` with `head` (the report and its required options), then every one of `options` that
    was set, the DAVIS sequences and --no-davis: the command as given, for the JSON."""
    parts = ["movseg", "report", *head]
    for option in options:
        value = getattr(args, option)
        if value:
            parts += [f"--{option.replace('_', '-')}", str(value)]
    if args.sequences:
        parts += ["--sequences", *args.sequences]
    if args.no_davis:
        parts.append("--no-davis")
    return shlex.join(parts)


# subcommand -> (help, add_arguments, run); a later report (e.g. stemseg) adds an entry here
REPORTS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "two-stream": ("Seed 000's ablation on our data: motion-only, appearance-only and joint mAP@0.5 on the "
                   "held-out synthetic split, and DAVIS J of two_stream vs geometric.", _add_two_stream, _run_two_stream),
    "stemseg": ("Seed 004's near-online stem_seg next to geometric (and two_stream with --joint): instance J&F, "
                "binary J and id switches on held-out synthetic streams, DAVIS J, frames/s and latency.",
                _add_stemseg, _run_stemseg),
    "visual-memory": ("Seed 003's MP-Net alone, memory online and memory offline: DAVIS J and F next to the other "
                      "pipelines, and frames/s at 640x480.", _add_visual_memory, _run_visual_memory),
}
