"""movseg run: segment a video, an image folder or a DAVIS sequence; write labels, tracks and pictures."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from movseg_ros.frame import Frame
from movseg_ros.image_format import PATH_LIMIT, ImageFileError
from movseg_ros.output import FrameOutput, TrackStatus
from movseg_ros.config_io import load_pipeline_config
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.safe_text import printable
from movseg_ros.sources import DEFAULT_FPS, Source, SourceError, open_source
from movseg_ros.writers import OutputFolder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path,
                   help="video file, folder of .jpg/.png frames, or DAVIS sequence (has JPEGImages/)")
    p.add_argument("--out", type=Path, help="output folder (default: out/run/<input name>)")
    p.add_argument("--config", type=Path, help="pipeline YAML (PipelineConfig fields) or a ROS params file of the node")
    p.add_argument("--fps", type=float, help=f"frame rate for stamps (default: the video's, else {DEFAULT_FPS:g})")
    p.add_argument("--offline", action="store_true", help="track forward then backward over the whole sequence")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--allow-partial", action="store_true",
                   help="skip an image that is truncated, corrupt or unreadable instead of stopping (exit 2); "
                        "each skipped file and its problem are listed in the summary and summary.json "
                        "(skipped_frames), and its frame index is left unused")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    try:
        source = open_source(args.input, args.fps)
        config = load_pipeline_config(args.config) if args.config else PipelineConfig()
        out_dir = args.out or Path("out") / "run" / source.name
        summary = segment_to_folder(source, config, out_dir, offline=args.offline, max_frames=args.max_frames,
                                    allow_partial=args.allow_partial)
    except (SourceError, ValueError, OSError, RuntimeError) as e:
        print(f"movseg run: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(_human(summary))
    return 0


def segment_to_folder(
    source: Source, config: PipelineConfig, out_dir: Path, offline: bool = False, max_frames: int | None = None,
    allow_partial: bool = False,
) -> dict[str, Any]:
    """Run the pipeline over a source, write every output file, return the summary (also saved).

    A bad image stops the run with a SourceError naming it, unless `allow_partial`: then it is left
    out and listed under "skipped_frames" (file and problem), never silently.
    """
    outputs_of = _offline_outputs if offline else _online_outputs
    total = len(source) if max_frames is None else min(len(source), max_frames)
    skipped: list[ImageFileError] = []
    frames = tqdm(source.frames(max_frames, skipped if allow_partial else None), total=total or None,
                  desc=source.name, unit="frame", file=sys.stderr, disable=None)
    pipeline = Pipeline(config)
    folder = OutputFolder(out_dir, source.fps, {"source": str(source.path), "fps": source.fps})
    clock = _Clock()
    seen: dict[int, bool] = {}  # track id -> ever moving
    for output in outputs_of(pipeline, frames, clock):
        folder.add(output)
        for t in output.tracks:
            if t.status == TrackStatus.VISIBLE:
                seen[t.id] = seen.get(t.id, False) or t.moving
    files = folder.finish()
    summary = {
        "input": source.name,
        "kind": source.kind,
        "frames": folder.count,
        "frames_skipped": len(skipped),
        "skipped_frames": [{"file": str(e.path), "problem": e.problem} for e in skipped],
        "fps": source.fps,
        "pipeline": pipeline.name,
        "device": pipeline.device,
        "offline": offline,
        "tracks_seen": len(seen),
        "track_ids": sorted(seen),
        "moving_track_ids": sorted(i for i, moving in seen.items() if moving),
        "ms_per_frame": round(1000.0 * clock.seconds / max(1, clock.frames), 2),
        "out": str(out_dir),
        "files": files,
    }
    files["summary"] = "summary.json"
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


class _Clock:
    """Processing time (segmenter + tracker) and frame count, excluding reading and writing."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.frames = 0


def _online_outputs(pipeline: Pipeline, frames: Iterable[Frame], clock: _Clock) -> Iterator[FrameOutput]:
    for frame in frames:
        start = time.perf_counter()
        outputs = pipeline.process(frame)
        clock.seconds += time.perf_counter() - start
        clock.frames += 1
        yield from outputs
    start = time.perf_counter()
    held = pipeline.finish()  # a near-online pipeline's last frames
    clock.seconds += time.perf_counter() - start
    yield from held


def _offline_outputs(pipeline: Pipeline, frames: Iterable[Frame], clock: _Clock) -> Iterator[FrameOutput]:
    """Segment every frame first, then track the whole sequence forward and backward."""
    start = time.perf_counter()
    outputs = pipeline.run_offline(frames)
    clock.seconds += time.perf_counter() - start
    clock.frames += len(outputs)
    yield from outputs


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _human(s: dict[str, Any]) -> str:
    files = ", ".join(v for k, v in s["files"].items())
    skipped = [f"skipped {s['frames_skipped']} unreadable frame(s) (--allow-partial):"] if s["skipped_frames"] else []
    skipped += [f"  {printable(f['file'], PATH_LIMIT)}: {f['problem']}" for f in s["skipped_frames"]]
    return "\n".join([
        f"movseg run: {s['frames']} frames of {s['input']} ({s['kind']}) through {s['pipeline']} on {s['device']}"
        f"{' (offline)' if s['offline'] else ''}: {s['ms_per_frame']} ms/frame",
        f"tracks: {s['tracks_seen']} seen, {len(s['moving_track_ids'])} moving at some point",
        *skipped,
        f"wrote {s['out']}/: {files}",
    ])
