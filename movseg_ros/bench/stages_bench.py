"""`movseg bench stages`: per-stage latency (p50/p99 ms), frames/s and peak memory of each pipeline.

Pipelines: the geometric one (stages flow, ego_motion, segmentation, tracking, timed inside the real
pipeline through its StageClock hook), learned flow (RAFT: prepare, network, finish), the seed-000
two-stream Mask R-CNN pipeline (flow, network, masks, tracking; also timed inside the real pipeline) and
the seed-004 near-online STEm-Seg pipeline (motion with weights that read it, network, clustering, stitching,
tracking), the last three
under every accelerator backend and precision asked for; a backend that is not available here is listed
with the reason instead of being timed. two_stream and stem_seg are in the default list only when their
weights files exist.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

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
from movseg_ros.segmenters.stem_seg import StemSegConfig
from movseg_ros.segmenters.two_stream import TwoStreamConfig

PIPELINES = ("geometric", "raft", "two_stream", "stem_seg")
DEFAULT_PIPELINES = ("geometric", "raft")  # plus two_stream and stem_seg when their weights files exist
GEOMETRIC_STAGES = ["flow", "ego_motion", "saliency", "segmentation", "tracking", "total"]
RAFT_STAGES = ["prepare", "network", "finish", "total"]
TWO_STREAM_STAGES = ["flow", "network", "masks", "tracking", "total"]
STEM_SEG_STAGES = ["network", "clustering", "stitching", "tracking", "total"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where RAFT, the two-stream and the STEm-Seg networks run (the geometric pipeline is "
                        "CPU code; default: cuda if there is one)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--iterations", type=int, default=20, help="frames timed per pipeline and backend")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    p.add_argument("--pipelines", nargs="+", choices=PIPELINES,
                   help=f"default: {' '.join(DEFAULT_PIPELINES)}, plus two_stream when --two-stream-weights "
                        f"exists and stem_seg when --stem-seg-weights exists")
    p.add_argument("--accelerators", nargs="+", choices=CHAIN, default=list(CHAIN),
                   help="RAFT, two_stream and stem_seg backends to time")
    p.add_argument("--precisions", nargs="+", choices=("fp32", "fp16", "bf16"),
                   help="RAFT, two_stream and stem_seg precisions (default: fp32, plus fp16 on CUDA)")
    p.add_argument("--weights", type=Path, help="RAFT weights (default: random weights, which time the same)")
    p.add_argument("--arch", default="raft_small", help="raft_small or raft_large")
    p.add_argument("--raft-iterations", type=int, default=12, help="RAFT refinement iterations")
    p.add_argument("--two-stream-weights", type=Path, default=TwoStreamConfig().weights_path(),
                   help="two-stream Mask R-CNN weights (default: %(default)s)")
    p.add_argument("--stem-seg-weights", type=Path, default=StemSegConfig().weights_path(),
                   help="STEm-Seg weights (default: %(default)s)")
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
    weights = {"two_stream": args.two_stream_weights, "stem_seg": args.stem_seg_weights}
    if args.pipelines is None:
        args.pipelines = list(DEFAULT_PIPELINES) + [name for name, path in weights.items() if path.is_file()]
    for name, path in weights.items():
        if name in args.pipelines and not path.is_file():
            problem = "is not a file" if path.exists() else "no such file"
            raise ValueError(f"--pipelines {name}: weights {path}: {problem} "
                             f"(give one with --{name.replace('_', '-')}-weights)")


def bench_stages(args: argparse.Namespace) -> dict[str, Any]:
    """Every run asked for, as one JSON-able dict (device, settings, and a list of runs)."""
    device = AcceleratorConfig(device=args.device).resolve_device()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    images = make_scene(SceneConfig(width=args.width, height=args.height, frames=24)).frames
    cycle = images + images[-2:0:-1]  # forwards then backwards: the stream never jumps
    frames = [cycle[i % len(cycle)] for i in range(args.warmup + args.iterations + 1)]
    precisions = args.precisions or (["fp32", "fp16"] if device.type == "cuda" else ["fp32"])
    runs: list[dict[str, Any]] = []
    if "geometric" in args.pipelines:
        runs.append(bench_geometric(frames, args.warmup))
    if "raft" in args.pipelines:
        runs += bench_raft(frames, args, device, precisions)
    if "two_stream" in args.pipelines:
        runs += bench_two_stream(frames, args, device, precisions)
    if "stem_seg" in args.pipelines:
        runs += bench_stem_seg(cycle, args, device, precisions)
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
            segment_seconds = _segment_and_track(pipeline, image, i, clock)
            clock.add("segmentation", segment_seconds - clock.so_far("flow", "ego_motion", "saliency"))
            clock.end_frame()
            if i == warmup:  # frame 0 has no previous frame: it and the warm-up frames are not counted
                clock.discard()
    return {"pipeline": "geometric", "backend": "-", "precision": "fp32", "status": "ran", "device": "cpu",
            "reason": "CPU code (OpenCV DIS flow)", "frames": len(clock.frames),
            "stages": clock.stats(GEOMETRIC_STAGES), "peak_memory_mib": memory.result.mib,
            "memory_kind": memory.result.kind}


def _segment_and_track(pipeline: Pipeline, image: np.ndarray, i: int, clock: StageClock) -> float:
    """Frame `i` through the pipeline's segmenter, then its tracker; adds tracking and total (both parts) to
    `clock` and returns the segmenter's seconds, whose own stages its StageClock hook records."""
    frame = Frame(image, (i + 1) * 33_333_333, "bench", i)
    t0 = time.perf_counter()
    results = pipeline.segment(frame)
    t1 = time.perf_counter()
    for r in results:
        pipeline.tracker.update(r)
    t2 = time.perf_counter()
    clock.add("tracking", t2 - t1)
    clock.add("total", t2 - t0)
    return t1 - t0


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


def bench_two_stream(frames: list[np.ndarray], args: argparse.Namespace, device: torch.device,
                     precisions: list[str]) -> list[dict[str, Any]]:
    """The real two_stream Pipeline per backend and precision, its stages timed by the StageClock hook.

    The first two frames (no flow yet, then the first network call, which builds the accelerated
    backbones) run untimed before the stream restarts; that build time is the row's build_seconds.
    """
    from movseg_ros.two_stream.arch import arch_name

    def measure(pipeline: Pipeline, requested: str) -> dict[str, Any]:
        built = _build_two_stream(pipeline, frames)
        return _outcome(built, requested, {"work_width": pipeline.config.two_stream.work_width},
                        lambda: _time_stages(pipeline, frames, args.warmup + 1, device, TWO_STREAM_STAGES))

    return _learned_runs("two_stream", args.two_stream_weights, arch_name("two_stream"), args, device, precisions,
                         measure)


def _learned_runs(name: str, weights: Path, arch: str, args: argparse.Namespace, device: torch.device,
                  precisions: list[str], measure: Callable[[Pipeline, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """A learned pipeline's rows per precision and requested backend: skipped (fp16 off CUDA) and unavailable
    backends with their reason, otherwise `measure` of the real Pipeline built with that backend and precision.

    The weights file is read first (its arch checked), so a bad file fails here, naming it.
    """
    from movseg_ros.model_files import load_checkpoint

    meta = load_checkpoint(weights, arch)["meta"]
    backbone = (meta.get("arch_settings") or {}).get("backbone", "unknown backbone")
    runs = []
    for precision in precisions:
        for requested in args.accelerators:
            base = {"pipeline": f"{name} ({backbone})", "backend": requested, "precision": precision,
                    "device": str(device), "weights": str(weights)}
            if precision == "fp16" and device.type != "cuda":
                runs.append(base | {"status": "skipped", "reason": "fp16 needs CUDA"})
                continue
            chosen, reason = select_backend(AcceleratorConfig(accelerator=requested, precision=precision,
                                                              device=device.type), device)
            if chosen != requested:
                runs.append(base | {"status": "unavailable", "reason": reason.split("; ", 1)[-1]})
                continue
            pipeline = Pipeline(PipelineConfig.from_dict({"pipeline": name, name: {
                "weights": str(weights), "accelerator": requested, "precision": precision, "device": device.type}}))
            runs.append(base | measure(pipeline, requested))
    return runs


def _outcome(built: list[Any], requested: str, details: dict[str, Any],
             timing: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """status failed (the build reasons) unless every AcceleratedModule built runs the requested backend;
    else status ran with the reasons, `details`, the build seconds and `timing()`."""
    reasons = "; ".join(dict.fromkeys(b.reason for b in built))
    if {b.backend for b in built} != {requested}:
        return {"status": "failed", "reason": reasons or "the network never ran"}
    return ({"status": "ran", "reason": reasons, **details, "build_seconds": sum(b.build_seconds for b in built)}
            | timing())


def _build_two_stream(pipeline: Pipeline, frames: list[np.ndarray]) -> list[Any]:
    """Run the first two frames untimed (the second builds the accelerated backbones), then restart the
    stream; the AcceleratedModules built, one per input shape."""
    for i, image in enumerate(frames[:2]):
        pipeline.process(Frame(image, (i + 1) * 33_333_333, "bench", i))
    pipeline.reset()
    features = getattr(pipeline.segmenter, "features", None)  # the segmenter's PerShapeAccelerated
    if features is None or not hasattr(features, "built"):
        raise RuntimeError("the two_stream segmenter does not run its backbones through PerShapeAccelerated")
    return list(features.built.values())


class _SyncedClock(StageClock):
    """A StageClock that waits for the GPU at both ends of each stage, so queued kernels count where they run."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self._sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.add(name, time.perf_counter() - start)


def _time_stages(pipeline: Pipeline, frames: list[np.ndarray], untimed: int, device: torch.device,
                 stages: list[str]) -> dict[str, Any]:
    """The segmenter's own stages (its StageClock hook), tracking and total around it, as bench_geometric does;
    the first `untimed` frames run but are not counted (two_stream: frame 0 has no flow, then the warm-up)."""
    clock = _SyncedClock(device)
    pipeline.segmenter.clock = clock
    with PeakMemory(device) as memory:
        for i, image in enumerate(tqdm(frames, desc=f"bench {pipeline.name}", unit="frame", file=sys.stderr,
                                       disable=None)):
            _segment_and_track(pipeline, image, i, clock)
            clock.end_frame()
            if i + 1 == untimed:
                clock.discard()
    pipeline.segmenter.clock = None
    return {"frames": len(clock.frames), "stages": clock.stats(stages), "peak_memory_mib": memory.result.mib,
            "memory_kind": memory.result.kind}


def bench_stem_seg(cycle: list[np.ndarray], args: argparse.Namespace, device: torch.device,
                   precisions: list[str]) -> list[dict[str, Any]]:
    """The real stem_seg Pipeline per backend and precision on one continuing stream, stages timed by its hook.

    The network runs once a clip, every s = T - T_c frames, so the timed frames are --iterations rounded up
    to whole strides (each holds exactly one clip: the per-frame means are the amortised costs, p99 shows a
    clip's). The first max(--warmup, T) frames run untimed; they include the first clip, whose network call
    builds the accelerated module (the row's build_seconds).
    """
    from movseg_ros.stem_seg.network import ARCH_NAME

    defaults = StemSegConfig()
    stride = defaults.clip_length - defaults.clip_overlap
    untimed = max(args.warmup, defaults.clip_length)
    timed_frames = math.ceil(args.iterations / stride) * stride
    frames = [cycle[i % len(cycle)] for i in range(untimed + timed_frames)]

    def measure(pipeline: Pipeline, requested: str) -> dict[str, Any]:
        stages = (["motion"] if pipeline.segmenter.motion is not None else []) + STEM_SEG_STAGES  # weights reading motion
        timing = _time_stages(pipeline, frames, untimed, device, stages)  # its first clip builds
        config = pipeline.config.stem_seg
        details = {"work_width": config.work_width, "clip_length": config.clip_length,
                   "clip_overlap": config.clip_overlap, "latency_frames": pipeline.latency_frames,
                   "untimed_frames": untimed}
        return _outcome(list(pipeline.segmenter.network.built.values()), requested, details, lambda: timing)

    return _learned_runs("stem_seg", args.stem_seg_weights, ARCH_NAME, args, device, precisions, measure)


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
        if "clip_length" in r:
            lines.append(f"{'':<{len(head)}} (near-online: a clip of {r['clip_length']} frames every "
                         f"{r['latency_frames']} frames, output {r['latency_frames']} frames late; {r['frames']} "
                         f"frames timed, whole strides, after {r['untimed_frames']} untimed; network p50 is a "
                         f"frame without a clip, p99 close to a clip's)")
    return "\n".join(lines)
