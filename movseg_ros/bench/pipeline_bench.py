"""`movseg bench pipeline`: frames/s of the whole pipeline (flow, segmenter, tracker) in one process."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--frames", type=int, default=300, help="frames timed (the scene is looped)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--davis", type=Path, default=None, help="time on this DAVIS sequence folder (resized) instead of the built-in scene")
    p.add_argument("--config", type=Path, default=None, help="pipeline config YAML (as for movseg run)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")


def _frames(args: argparse.Namespace) -> list[np.ndarray]:
    if args.davis is not None:
        from movseg_ros.datasets.davis import read_sequence

        seq = read_sequence(args.davis)
        return [cv2.resize(seq.image(i), (args.width, args.height), interpolation=cv2.INTER_AREA) for i in range(len(seq))]
    return make_scene(SceneConfig(width=args.width, height=args.height, frames=60)).frames


def run(args: argparse.Namespace) -> int:
    config = PipelineConfig()
    if args.config is not None:
        from movseg_ros.config_io import load_pipeline_config

        config = load_pipeline_config(args.config)
    images = _frames(args)
    pipeline = Pipeline(config)
    # loop forwards then backwards so the stream stays continuous (no reset at the loop point)
    cycle = images + images[-2:0:-1]
    times = []
    for i in tqdm(range(args.warmup + args.frames), desc="bench pipeline", unit="frame"):
        frame = Frame(cycle[i % len(cycle)], (i + 1) * 33_333_333, "bench", i)
        t0 = time.perf_counter()
        pipeline.process(frame)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    result = {
        "pipeline": pipeline.name, "device": pipeline.device, "resolution": f"{args.width}x{args.height}",
        "frames": len(times), "fps": float(1000.0 / ms.mean()), "ms_mean": float(ms.mean()),
        "ms_p50": float(np.percentile(ms, 50)), "ms_p95": float(np.percentile(ms, 95)), "ms_p99": float(np.percentile(ms, 99)),
        "source": str(args.davis) if args.davis else "built-in scene",
    }
    print(f"pipeline {result['pipeline']} on {result['device']}, {result['resolution']}, {result['frames']} frames ({result['source']})")
    print(f"  {result['fps']:.1f} frames/s   mean {result['ms_mean']:.1f} ms   p50 {result['ms_p50']:.1f}   p95 {result['ms_p95']:.1f}   p99 {result['ms_p99']:.1f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0
