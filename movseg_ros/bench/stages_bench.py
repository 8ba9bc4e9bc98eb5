"""`movseg bench stages`: per-stage latency (p50/p99 ms), frames/s and peak memory of each pipeline.

Pipelines: the geometric one (stages flow, ego_motion, segmentation, tracking, timed inside the real
pipeline through its StageClock hook) and learned flow (RAFT: prepare, network, finish) under every
accelerator backend and precision asked for; a backend that is not available here is listed with
the reason instead of being timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from movseg_ros.accel.backends import CHAIN, accelerate, select_backend
from movseg_ros.accel.config import AcceleratorConfig
from movseg_ros.bench.peak_memory import PeakMemory
from movseg_ros.bench.stage_clock import StageClock
from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene

PIPELINES = ("geometric", "raft")
GEOMETRIC_STAGES = ["flow", "ego_motion", "segmentation", "tracking", "total"]
RAFT_STAGES = ["prepare", "network", "finish", "total"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where RAFT runs (the geometric pipeline is CPU code; default: cuda if there is one)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--iterations", type=int, default=20, help="frames timed per pipeline and backend")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    p.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    p.add_argument("--accelerators", nargs="+", choices=CHAIN, default=list(CHAIN), help="RAFT backends to time")
    p.add_argument("--precisions", nargs="+", choices=("fp32", "fp16", "bf16"),
                   help="RAFT precisions (default: fp32, plus fp16 on CUDA)")
    p.add_argument("--weights", type=Path, help="RAFT weights (default: random weights, which time the same)")
    p.add_argument("--arch", default="raft_small", help="raft_small or raft_large")
    p.add_argument("--raft-iterations", type=int, default=12, help="RAFT refinement iterations")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: torch's choice); 1 is steadier on a busy machine")
    p.add_argument("--json", type=Path, help="also write the figures here")


def run(args: argparse.Namespace) -> int:
    try:
        _check(args)
        result = bench_stages(args)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"movseg bench: error: {e}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def _check(args: argparse.Namespace) -> None:
    if not (16 <= args.width <= 4096 and 16 <= args.height <= 4096):
        raise ValueError(f"--width/--height must be in [16, 4096], got {args.width}x{args.height}")
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    if args.iterations < 1 or args.warmup < 0:
        raise ValueError(f"--iterations must be >= 1 and --warmup >= 0, got {args.iterations} and {args.warmup}")
    AcceleratorConfig(device=args.device).resolve_device()  # 'cuda' without a GPU: a clear error


def bench_stages(args: argparse.Namespace) -> dict[str, Any]:
    """Every run asked for, as one JSON-able dict (device, settings, and a list of runs)."""
    device = AcceleratorConfig(device=args.device).resolve_device()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    images = make_scene(SceneConfig(width=args.width, height=args.height, frames=24)).frames
    cycle = images + images[-2:0:-1]  # forwards then backwards: the stream never jumps
    frames = [cycle[i % len(cycle)] for i in range(args.warmup + args.iterations + 1)]
    runs: list[dict[str, Any]] = []
    if "geometric" in args.pipelines:
        runs.append(bench_geometric(frames, args.warmup))
    if "raft" in args.pipelines:
        precisions = args.precisions or (["fp32", "fp16"] if device.type == "cuda" else ["fp32"])
        runs += bench_raft(frames, args, device, precisions)
    return {
        "device": str(device), "device_name": _device_name(device), "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0], "resolution": f"{args.width}x{args.height}",
        "iterations": args.iterations, "warmup": args.warmup, "runs": runs,
    }


def bench_geometric(frames: list[np.ndarray], warmup: int) -> dict[str, Any]:
    """The real Pipeline, its segmenter's flow and ego-motion timed by the StageClock hook."""
    pipeline = Pipeline(PipelineConfig())
    clock = StageClock()
    pipeline.segmenter.clock = clock
    with PeakMemory("cpu") as memory:
        for i, image in enumerate(tqdm(frames, desc="bench geometric", unit="frame", file=sys.stderr, disable=None)):
            frame = Frame(image, (i + 1) * 33_333_333, "bench", i)
            t0 = time.perf_counter()
            results = pipeline.segment(frame)
            t1 = time.perf_counter()
            for r in results:
                pipeline.tracker.update(r)
            t2 = time.perf_counter()
            clock.add("segmentation", (t1 - t0) - clock.so_far("flow", "ego_motion"))
            clock.add("tracking", t2 - t1)
            clock.add("total", t2 - t0)
            clock.end_frame()
            if i == warmup:  # frame 0 has no previous frame: it and the warm-up frames are not counted
                clock.discard()
    return {"pipeline": "geometric", "backend": "-", "precision": "fp32", "status": "ran", "device": "cpu",
            "reason": "CPU code (OpenCV DIS flow)", "frames": len(clock.frames),
            "stages": clock.stats(GEOMETRIC_STAGES), "peak_memory_mib": memory.result.mib,
            "memory_kind": memory.result.kind}


def bench_raft(frames: list[np.ndarray], args: argparse.Namespace, device: torch.device,
               precisions: list[str]) -> list[dict[str, Any]]:
    """RaftFlow with its network replaced by each backend's accelerated module, per precision."""
    from movseg_ros.learned_flow import RaftFlow, RaftFlowConfig, build_raft

    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if weights is None:  # timing does not depend on the weights' values
            weights = Path(tmp) / f"{args.arch}_random.pt"
            torch.save(build_raft(args.arch).state_dict(), weights)
        raft = RaftFlow(RaftFlowConfig(arch=args.arch, weights=str(weights), iterations=args.raft_iterations,
                                       device=device.type))
    h, w = raft.input_shape(args.height, args.width)
    example = [torch.zeros(1, 3, h, w, device=device), torch.zeros(1, 3, h, w, device=device)]
    runs = []
    for precision in precisions:
        for requested in args.accelerators:
            config = AcceleratorConfig(accelerator=requested, precision=precision, device=device.type)
            base = {"pipeline": f"raft ({args.arch}, {args.raft_iterations} it)", "backend": requested,
                    "precision": precision, "device": str(device), "weights": str(args.weights or "random")}
            if precision == "fp16" and device.type != "cuda":
                runs.append(base | {"status": "skipped", "reason": "fp16 needs CUDA"})
                continue
            chosen, reason = select_backend(config, device)
            if chosen != requested:
                runs.append(base | {"status": "unavailable", "reason": reason.split("; ", 1)[-1]})
                continue
            accelerated = accelerate(raft.module, example, config, name="flow")
            if accelerated.backend != requested:
                runs.append(base | {"status": "failed", "reason": accelerated.reason})
                continue
            raft.set_forward(accelerated)
            runs.append(base | {"status": "ran", "reason": accelerated.reason,
                                "build_seconds": accelerated.build_seconds} | _time_raft(raft, frames, args, device))
            raft.set_forward(None)
    return runs


def _time_raft(raft: Any, frames: list[np.ndarray], args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """prepare / network / finish per frame pair; the device is synchronised around the network."""
    clock = StageClock()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    pairs = list(zip(frames[:-1], frames[1:]))
    with PeakMemory(device) as memory:
        for i, (a, b) in enumerate(tqdm(pairs, desc="bench raft", unit="pair", file=sys.stderr, disable=None)):
            t0 = time.perf_counter()
            img1, img2 = raft.prepare(a, b)
            sync()
            t1 = time.perf_counter()
            flow = raft.forward_fn(img1, img2)
            sync()
            t2 = time.perf_counter()
            raft.finish(flow, *a.shape[:2])
            t3 = time.perf_counter()
            for name, seconds in (("prepare", t1 - t0), ("network", t2 - t1), ("finish", t3 - t2), ("total", t3 - t0)):
                clock.add(name, seconds)
            clock.end_frame()
            if i + 1 == args.warmup:
                clock.discard()
    return {"frames": len(clock.frames), "stages": clock.stats(RAFT_STAGES), "peak_memory_mib": memory.result.mib,
            "memory_kind": memory.result.kind}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def format_table(result: dict[str, Any]) -> str:
    """The runs as a fixed-width table: one row per stage, unavailable backends with their reason."""
    lines = [f"movseg bench stages: {result['resolution']}, {result['iterations']} frames timed after "
             f"{result['warmup']} warm-up, {result['device']} ({result['device_name']}), torch {result['torch']}, "
             f"{result['cpu_threads']} CPU threads, load average {result['load_average_1min']:.1f}",
             f"{'pipeline':<26} {'backend':<9} {'prec':<5} {'stage':<13} {'p50 ms':>9} {'p99 ms':>9} {'frames/s':>9}  peak memory"]
    for r in result["runs"]:
        head = f"{r['pipeline']:<26} {r['backend']:<9} {r['precision']:<5}"
        if r["status"] != "ran":
            lines.append(f"{head} {r['status']}: {r['reason']}")
            continue
        for j, (stage, s) in enumerate(r["stages"].items()):
            prefix = head if j == 0 else " " * len(head)
            mem = f"  +{r['peak_memory_mib']:.1f} MiB {r['memory_kind']}" if stage == "total" else ""
            lines.append(f"{prefix} {stage:<13} {s['p50_ms']:>9.2f} {s['p99_ms']:>9.2f} {s['fps']:>9.1f}{mem}")
        if "build_seconds" in r:
            lines.append(f"{'':<{len(head)}} (built in {r['build_seconds']:.1f} s: {r['reason']})")
    return "\n".join(lines)
