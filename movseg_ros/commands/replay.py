"""movseg replay: replay a bag through the pipeline (in-process) or through the real node (--live).

In-process mode is deterministic: every image is segmented in order, as `movseg run` would.
Live mode starts the node in its own process, publishes the bag's images at the recorded
rate (x --speed), records all the node publishes into an output bag and accounts for every
frame. Both score against the bag's ground-truth topic when it has one and write plots, an
overlay contact sheet and summary.json into --out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from movseg_ros.bags.errors import BagError
from movseg_ros.bags.topics import TRUTH_TOPIC
from movseg_ros.config_io import load_pipeline_config
from movseg_ros.pipeline import PipelineConfig
from movseg_ros.replay.options import ReplayOptions
from movseg_ros.evaluation.stamped import ScoringError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3 or mcap), e.g. one written by `movseg bag make`")
    p.add_argument("--live", action="store_true", help="through the real node in its own process (default: in-process)")
    p.add_argument("--out", type=Path, help="output folder (default out/replay/<bag name>[-live])")
    p.add_argument("--image-topic", help="camera topic (default: the bag's only image topic)")
    p.add_argument("--truth-topic", default=TRUTH_TOPIC, help=f"ground-truth label maps (default {TRUTH_TOPIC})")
    p.add_argument("--config", type=Path,
                   help="pipeline YAML or the node's ROS params file (live mode passes it to the node)")
    p.add_argument("--speed", type=float, default=1.0, help="live: publish at k x the recorded rate (default 1)")
    p.add_argument("--max-frames", type=int, metavar="N", help="only the first N images")
    p.add_argument("--missing-as-empty", action="store_true",
                   help="score frames without an output as empty masks instead of marking the result partial")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3",
                   help="live: storage of the bag the node's outputs are recorded into")
    p.add_argument("--json", type=Path, help="also write the summary here (summary.json is always in --out)")


def run(args: argparse.Namespace) -> int:
    try:
        options = ReplayOptions(
            bag=args.bag, out=args.out or Path("out") / "replay" / (args.bag.name + ("-live" if args.live else "")),
            image_topic=args.image_topic, truth_topic=args.truth_topic,
            config=load_pipeline_config(args.config) if args.config else PipelineConfig(),
            max_frames=args.max_frames, missing_as_empty=args.missing_as_empty, speed=args.speed,
            params_file=args.config if args.live else None, storage=args.storage)
        if args.live:
            from movseg_ros.ros.live_replay import replay_live

            summary = replay_live(options)
        else:
            from movseg_ros.replay.in_process import replay_in_process

            summary = replay_in_process(options)
    except (BagError, ScoringError, ValueError, FileNotFoundError) as e:
        print(f"movseg replay: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"movseg replay: {e}", file=sys.stderr)
        return 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(Path(summary["files"]["summary"]).read_text())
    print(human(summary))
    return 0 if not summary["account"]["problems"] else 1


def human(s: dict[str, Any]) -> str:
    """The summary on one screen."""
    from movseg_ros.replay.account import FrameAccount

    a = s["account"]
    account = FrameAccount(**{k: a[k] for k in FrameAccount.__dataclass_fields__})
    lat = s["latency"]
    lines = [f"movseg replay ({s['mode']}): {s['bag']}  topic {s['image_topic']}  pipeline {s['pipeline']} "
             f"on {s['device']}"]
    lines += ["  " + line for line in account.lines()]
    if lat["outputs"]:
        lines.append(f"  latency p50 {lat['p50_ms']:.1f} ms  p95 {lat['p95_ms']:.1f} ms  p99 {lat['p99_ms']:.1f} ms"
                     f"  max {lat['max_ms']:.1f} ms" + (f"  rate {lat['rate_hz']:.1f} Hz" if lat["rate_hz"] else ""))
    m = s.get("metrics")
    if m is None:
        lines.append("  no ground truth in the bag: not scored")
    elif m.get("binary") is None:
        lines.append(f"  ground truth present but no frame could be scored ({m['missing_predictions']} without output)")
    else:
        b, inst = m["binary"], m["instances"]
        lines.append(f"  DAVIS binary over {m['frames_scored']} of {m['frames_with_truth']} frames: "
                     f"J {b['J']['mean']:.3f}  F {b['F']['mean']:.3f}  J&F {b['JF']:.3f}"
                     + ("  PARTIAL" if m["partial"] else ""))
        lines.append(f"  instances (DAVIS-2017 unsupervised matching, {inst['objects']} truth objects): "
                     f"J&F {inst['J&F-Mean']:.3f}")
    if s.get("mode") == "in-process":
        lines.append(f"  output digest {s['output_digest'][:16]} (same bag and settings give the same digest)")
    lines.append("  wrote " + ", ".join(sorted(Path(v).name for v in s["files"].values())) + f" in {Path(s['files']['summary']).parent}")
    return "\n".join(lines)
