"""movseg bag: write frames into a rosbag2 bag (make) or describe a bag (info)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from movseg_ros.bags.errors import BagError
from movseg_ros.bags.from_source import open_frames
from movseg_ros.bags.survey import BagSurvey, survey_bag
from movseg_ros.bags.topics import IMAGE_TOPIC, TRUTH_TOPIC
from movseg_ros.bags.writer import STORAGES, BagMakeConfig, write_image_bag
from movseg_ros.sources import SourceError

PROG = "movseg bag"


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = actions.add_parser(
        "make", help="write a video, an image folder or a DAVIS sequence into a bag",
        description="Write frames as sensor_msgs/Image rgb8 at a fixed rate; a DAVIS sequence's Annotations/ "
                    "go on a second topic as mono16 label maps with the same header stamps.")
    make.add_argument("source", type=Path, help="video file, folder of .jpg/.png frames, or DAVIS sequence folder")
    make.add_argument("out", type=Path, help="bag to create (a rosbag2 folder)")
    make.add_argument("--rate", type=_positive_float, metavar="HZ",
                      help="frames per second for the stamps (default: the video's rate, else 30)")
    make.add_argument("--storage", choices=tuple(STORAGES), default="sqlite3", help="storage plugin (default sqlite3)")
    make.add_argument("--image-topic", default=IMAGE_TOPIC, help=f"camera topic (default {IMAGE_TOPIC})")
    make.add_argument("--truth-topic", default=TRUTH_TOPIC, help=f"ground-truth topic (default {TRUTH_TOPIC})")
    make.add_argument("--frame-id", default="camera", help="header frame_id (default camera)")
    make.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    make.add_argument("--resize", type=_size, metavar="WxH", help="resize frames (and truth, nearest) to WxH")
    make.add_argument("--overwrite", action="store_true", help="replace an existing bag at OUT")
    make.add_argument("--json", type=Path, metavar="PATH", help="also write the summary as JSON here")
    info = actions.add_parser(
        "info", help="describe a bag: topics, rates, stamps, image sizes, image/truth pairing",
        description="Read every message of a bag once and describe it.")
    info.add_argument("bag", type=Path, help="rosbag2 folder, or a single .db3 / .mcap file")
    info.add_argument("--image-topic", help="camera topic to pair with the truth (default: the only image topic)")
    info.add_argument("--truth-topic", default=TRUTH_TOPIC, help=f"ground-truth topic (default {TRUTH_TOPIC})")
    info.add_argument("--json", type=Path, metavar="PATH", help="also write the description as JSON here")


def run(args: argparse.Namespace) -> int:
    try:
        summary = _make(args) if args.action == "make" else _info(args)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    except (BagError, SourceError, ValueError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


def _make(args: argparse.Namespace) -> dict[str, Any]:
    source = open_frames(args.source, args.max_frames, args.resize)
    config = BagMakeConfig(rate_hz=args.rate or source.source.fps, storage=args.storage, image_topic=args.image_topic,
                           truth_topic=args.truth_topic, frame_id=args.frame_id)
    start = time.perf_counter()
    frames = tqdm(source.frames(), total=source.total or None, desc=f"bag {source.source.name}", unit="frame",
                  file=sys.stderr, disable=None)
    summary = write_image_bag(args.out, frames, config, overwrite=args.overwrite)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in summary.path.iterdir() if p.is_file())
    out = summary.to_dict() | {"source": str(args.source), "source_kind": source.source.kind,
                               "truth_kind": source.truth_kind, "size_bytes": size, "seconds": round(seconds, 3)}
    print(f"wrote {summary.path} ({summary.storage}, {_mb(size)}) from {source.source.kind} {args.source}")
    print(f"  {summary.image_topic}: {summary.frames} rgb8 {summary.width}x{summary.height} images at "
          f"{summary.rate_hz:g} Hz, {summary.duration_ns / 1e9:.3f} s, first stamp {_clock(summary.start_ns)}")
    if summary.truth_frames:
        print(f"  {summary.truth_topic}: {summary.truth_frames} mono16 label maps ({source.truth_kind}), "
              f"same stamps as the images")
    else:
        print("  no ground truth (only a DAVIS sequence with Annotations/ brings it)")
    print(f"  {seconds:.2f} s, {1000 * seconds / max(1, summary.frames):.1f} ms a frame")
    return out


def _info(args: argparse.Namespace) -> dict[str, Any]:
    survey = survey_bag(args.bag, args.image_topic, args.truth_topic, progress=True)
    print(_describe(survey))
    return survey.to_dict()


def _describe(survey: BagSurvey) -> str:
    info = survey.info
    lines = [
        f"bag       {info.path}",
        f"storage   {info.storage}, {info.message_count} messages, {_mb(info.size_bytes)}",
        f"start     {_clock(info.start_ns)}" if info.message_count else "start     - (empty bag)",
        f"end       {_clock(info.end_ns)}" if info.message_count else "end       -",
        f"duration  {info.duration_ns / 1e9:.3f} s",
        "",
        f"{'topic':<28}{'type':<34}{'count':>7}{'rate Hz':>9}  {'header stamps':<22}first image",
    ]
    for t in survey.topics:
        rate = f"{t.rate_hz:.2f}" if t.rate_hz else "-"
        if t.stamps_monotonic is None:
            order = "-"
        elif t.stamps_monotonic:
            order = "increasing"
        else:
            order = f"{t.stamps_back} back, {t.stamps_repeated} repeated"
        image = f"{t.encoding} {t.width}x{t.height}" if t.width is not None else (t.encoding or "")
        bad = f"  ({t.undecodable} undecodable)" if t.undecodable else ""
        lines.append(f"{t.name:<28}{t.msgtype:<34}{t.count:>7}{rate:>9}  {order:<22}{image}{bad}")
    lines.append("")
    if survey.image_topic is None:
        lines.append("camera topic: none chosen (no single image topic; pass --image-topic to pair with truth)")
    elif not survey.pairings:
        lines.append(f"camera topic {survey.image_topic}: no ground-truth or instances topic to pair with")
    for p in survey.pairings:
        lines.append(f"{p.image_topic} vs {p.label_topic}: {p.with_label} of {p.images} images have a label map "
                     f"with the same stamp, {p.without_label} without, {p.labels_without_image} label maps "
                     f"match no image")
    return "\n".join(lines)


def _clock(stamp_ns: int) -> str:
    """UTC time with nanoseconds, and the raw stamp."""
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    when = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when}.{nsec:09d} UTC ({stamp_ns} ns)"


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) < 1 or int(parts[1]) < 1:
        raise argparse.ArgumentTypeError(f"expected WxH like 320x240, got '{text}'")
    return int(parts[0]), int(parts[1])
