"""movseg run: segment a video, an image folder or a DAVIS sequence; write labels, tracks and pictures."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from movseg_ros.frame import Frame
from movseg_ros.output import FrameOutput, TrackStatus
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.segmenters.base import SegmenterResult
from movseg_ros.sources import DEFAULT_FPS, Source, SourceError, open_source
from movseg_ros.writers import OutputFolder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="video file, folder of .jpg/.png frames, or DAVIS sequence (has JPEGImages/)")
    p.add_argument("--out", type=Path, help="output folder (default: out/run/<input name>)")
    p.add_argument("--config", type=Path, help="pipeline YAML (PipelineConfig fields) or a ROS params file of the node")
    p.add_argument("--fps", type=float, help=f"frame rate for stamps (default: the video's, else {DEFAULT_FPS:g})")
    p.add_argument("--offline", action="store_true", help="track forward then backward over the whole sequence")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    try:
        source = open_source(args.input, args.fps)
        config = load_pipeline_config(args.config) if args.config else PipelineConfig()
        out_dir = args.out or Path("out") / "run" / source.name
        summary = segment_to_folder(source, config, out_dir, offline=args.offline, max_frames=args.max_frames)
    except (SourceError, ValueError, OSError, RuntimeError) as e:
        print(f"movseg run: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(_human(summary))
    return 0


def segment_to_folder(
    source: Source, config: PipelineConfig, out_dir: Path, offline: bool = False, max_frames: int | None = None
) -> dict[str, Any]:
    """Run the pipeline over a source, write every output file, return the summary (also saved)."""
    outputs_of = _offline_outputs if offline else _online_outputs
    if offline:
        _track_offline()  # fail before any file is written
    total = len(source) if max_frames is None else min(len(source), max_frames)
    frames = tqdm(source.frames(max_frames), total=total or None, desc=source.name, unit="frame", file=sys.stderr,
                  disable=None)
    pipeline = Pipeline(config)
    folder = OutputFolder(out_dir, source.fps, {"source": str(getattr(source, "path", source.name)), "fps": source.fps})
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


def _offline_outputs(pipeline: Pipeline, frames: Iterable[Frame], clock: _Clock) -> Iterator[FrameOutput]:
    """Segment every frame first, then track the whole sequence forward and backward."""
    track_offline = _track_offline()
    results: list[SegmenterResult] = []
    for frame in frames:
        start = time.perf_counter()
        if pipeline.buffer.push(frame) is not None:
            pipeline.segmenter.reset()
        results.extend(pipeline.segmenter.process(pipeline.buffer))
        clock.seconds += time.perf_counter() - start
        clock.frames += 1
    start = time.perf_counter()
    outputs = track_offline(results, pipeline.config.tracker)
    clock.seconds += time.perf_counter() - start
    yield from outputs


def _track_offline() -> Callable[..., list[FrameOutput]]:
    """The tracker's forward-backward pass over a whole sequence."""
    from movseg_ros import tracker

    track_offline = getattr(tracker, "track_offline", None)
    if track_offline is None:
        raise RuntimeError("--offline needs movseg_ros.tracker.track_offline, which this version does not have")
    return track_offline


def load_pipeline_config(path: Path) -> PipelineConfig:
    """PipelineConfig from a YAML file: its nested (or dotted) fields, or a node's ROS params file.

    From a ROS params file ({node: {ros__parameters: {...}}}) only the pipeline's own settings
    are taken (pipeline, buffer_length, geometric.*, tracker.*); node settings such as qos are skipped.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config {path}: no such file") from None
    except yaml.YAMLError as e:
        raise ValueError(f"config {path} is not valid YAML: {e}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"config {path}: expected a mapping at the top, got {type(data).__name__}")
    ros = _ros_parameters(data)
    tree = expand_dotted(ros if ros is not None else data)
    if ros is not None:
        known = {f.name for f in dataclasses.fields(PipelineConfig)}
        tree = {k: v for k, v in tree.items() if k in known}
    try:
        return PipelineConfig.from_dict(tree)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config {path}: {e}") from None


def expand_dotted(d: dict[str, Any]) -> dict[str, Any]:
    """{'tracker.alpha_low': 0.6, 'tracker': {'t_inactive': 5}} -> {'tracker': {'alpha_low': 0.6, 't_inactive': 5}}."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            value = expand_dotted(value)
        *parents, leaf = str(key).split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"setting '{key}' conflicts with a plain value at '{part}'")
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf] = _merge(node[leaf], value)
        else:
            node[leaf] = value
    return out


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _ros_parameters(data: dict[str, Any]) -> dict[str, Any] | None:
    """The ros__parameters section of a params file (the movseg node's if several), else None."""
    sections = {str(k): v["ros__parameters"] for k, v in data.items() if isinstance(v, dict) and "ros__parameters" in v}
    if not sections:
        return None
    name = next((k for k in sections if k.rstrip("/").split("/")[-1] == "movseg"), next(iter(sections)))
    return sections[name] or {}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _human(s: dict[str, Any]) -> str:
    files = ", ".join(v for k, v in s["files"].items())
    return (
        f"movseg run: {s['frames']} frames of {s['input']} ({s['kind']}) through {s['pipeline']} on {s['device']}"
        f"{' (offline)' if s['offline'] else ''}: {s['ms_per_frame']} ms/frame\n"
        f"tracks: {s['tracks_seen']} seen, {len(s['moving_track_ids'])} moving at some point\n"
        f"wrote {s['out']}/: {files}"
    )
