"""movseg export: build and cache a model's accelerated form ahead of time for one input size.

`movseg export flow --weights W --width 640 --height 480` builds RAFT's network for that frame size
on the chosen accelerator: a TensorRT engine (CUDA with torch-tensorrt), or for the compile and
eager backends an exported graph (torch.export) that later builds load instead of tracing the
Python model. Both go into the engine cache, keyed by model hash, input shape, precision, device
and backend; the command prints the backend chosen and why, the cache key and file, hit or miss,
and the build time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from movseg_ros.accel.backends import CHAIN, accelerate
from movseg_ros.accel.config import PRECISIONS, AcceleratorConfig
from movseg_ros.accel.errors import AcceleratorConfigError, EngineCacheError

TARGETS = ("flow",)  # the two-stream model and STEm-Seg join here when they exist


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", choices=TARGETS, help="which model: flow (RAFT)")
    p.add_argument("--weights", type=Path, required=True, help="the model's weights file")
    p.add_argument("--arch", default="raft_small", help="raft_small or raft_large")
    p.add_argument("--iterations", type=int, default=12, help="RAFT refinement iterations (part of the graph)")
    p.add_argument("--width", type=int, default=640, help="frame width the module is built for")
    p.add_argument("--height", type=int, default=480, help="frame height the module is built for")
    p.add_argument("--accelerator", choices=("auto",) + CHAIN, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--cache-dir", default="", help="engine cache (default $MOVSEG_CACHE, else ~/.cache/movseg_ros/engines)")
    p.add_argument("--json", type=Path, help="also write the summary here")


def run(args: argparse.Namespace) -> int:
    try:
        if not (16 <= args.width <= 4096 and 16 <= args.height <= 4096):
            raise ValueError(f"--width/--height must be in [16, 4096], got {args.width}x{args.height}")
        config = AcceleratorConfig(accelerator=args.accelerator, precision=args.precision, cache_dir=args.cache_dir,
                                   device=args.device)
        module, inputs, what = flow_target(args, config.resolve_device())
        accelerated = accelerate(module, inputs, config, name=args.target, cache=True)
        if not accelerated.cache_key:
            raise ValueError(f"nothing was cached for {args.target}: {accelerated.reason}")
    except (AcceleratorConfigError, EngineCacheError, ValueError, OSError) as e:
        print(f"movseg export: error: {e}", file=sys.stderr)
        return 2
    summary = {"target": args.target, "model": what, "frame_size": f"{args.width}x{args.height}",
               "input_shapes": [list(x.shape) for x in inputs], "cache_dir": str(config.cache_path()),
               **accelerated.summary()}
    print(_human(summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


def flow_target(args: argparse.Namespace, device: torch.device) -> tuple[nn.Module, list[torch.Tensor], str]:
    """RAFT's network (RaftFlow.module) and example inputs of the padded size it sees for these frames."""
    from movseg_ros.learned_flow import RaftFlow, RaftFlowConfig

    raft = RaftFlow(RaftFlowConfig(arch=args.arch, weights=str(args.weights), iterations=args.iterations,
                                   device=device.type))
    h, w = raft.input_shape(args.height, args.width)
    inputs = [torch.zeros(1, 3, h, w, device=device), torch.zeros(1, 3, h, w, device=device)]
    return raft.module, inputs, f"{args.arch}, {args.iterations} iterations, weights {args.weights}"


def _human(s: dict[str, Any]) -> str:
    shapes = " and ".join("x".join(map(str, shape)) for shape in s["input_shapes"])
    cache = f"{'hit' if s['cache_hit'] else 'miss, built'}: {s['cache_path']} (key {s['cache_key']})"
    return "\n".join([
        f"movseg export {s['target']}: {s['model']}",
        f"  frames {s['frame_size']} -> module inputs {shapes}, {s['device']}, {s['precision']}",
        f"  accelerator: {s['backend']} ({s['reason']})",
        f"  cache: {cache}",
        f"  build: {s['build_seconds']:.2f} s",
    ])
