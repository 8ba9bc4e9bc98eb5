"""movseg flow epe: end-point error of learned flow (RAFT) against DIS and zero flow.

All methods run on the same held-out synthetic pairs (clip seeds disjoint from training); the table
gives mean EPE (px), the fractions of pixels off by more than 1 and 3 px, and milliseconds per pair.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from movseg_ros.flow import DISFlow, DISFlowConfig, DIS_PRESETS
from movseg_ros.learned_flow.evaluate import BOUNDARY_RADIUS, BOUNDARY_STEP, MethodScore, flow_colour, score_methods, synth_pairs, zero_flow
from movseg_ros.learned_flow.raft import ARCHS, RaftFlow, RaftFlowConfig, RaftFlowError
from movseg_ros.model_files import ModelFileError
from movseg_ros.reports.common import parse_seed_range
from movseg_ros.synth.config import PRESETS, SynthConfigError, preset
from movseg_ros.plots import pyplot, save_figure

ACTIONS = ("epe",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS, help="epe: end-point error of RAFT vs DIS vs zero flow")
    p.add_argument("--weights", required=True, type=Path, help="RAFT weights (our checkpoint or a torchvision state dict)")
    p.add_argument("--arch", choices=sorted(ARCHS), default="raft_small", help="RAFT architecture (default raft_small)")
    p.add_argument("--iterations", type=int, default=12, help="RAFT refinement iterations (default 12)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="RAFT device (default cpu)")
    p.add_argument("--split-seeds", default="100000:100050",
                   help="held-out clip seeds START:STOP (default 100000:100050, disjoint from training's 0:100000)")
    p.add_argument("--preset", default="motion", help=f"synthetic preset ({', '.join(PRESETS)}; default motion)")
    p.add_argument("--synth", action="append", default=[], metavar="KEY=VALUE",
                   help="change a generator setting of the preset (YAML value), repeatable, e.g. "
                        "--synth 'translation=[4, 20]'")
    p.add_argument("--width", type=int, default=256, help="frame width (default 256, the training size)")
    p.add_argument("--height", type=int, default=192, help="frame height (default 192)")
    p.add_argument("--dis", default="medium,fast",
                   help="DIS presets to compare, comma-separated, at full resolution (default medium,fast; "
                        "medium is the geometric pipeline's)")
    p.add_argument("--json", type=Path, help="also write the summary here as JSON")
    p.add_argument("--plot", type=Path, help="PNG: EPE bars and one pair's flow from each method")


def run(args: argparse.Namespace) -> int:
    try:
        summary = _epe(args)
    except (RaftFlowError, ModelFileError, SynthConfigError, ValueError, FileNotFoundError) as e:
        print(f"movseg flow: error: {e}", file=sys.stderr)
        return 2
    _print_table(summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


def parse_synth(items: list[str]) -> dict[str, Any]:
    """['translation=[4, 20]', ...] -> {'translation': (4, 20), ...}; malformed items are a ValueError."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--synth '{item}' is not KEY=VALUE")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"--synth '{item}': value is not valid YAML: {e}") from None
        out[key.strip()] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def _epe(args: argparse.Namespace) -> dict[str, Any]:
    seeds = parse_seed_range(args.split_seeds, "--split-seeds", ("START", "STOP"))
    dis_names = [d.strip() for d in args.dis.split(",") if d.strip()]
    bad = [d for d in dis_names if d not in DIS_PRESETS]
    if bad:
        raise ValueError(f"--dis: unknown DIS preset(s) {bad}; known: {', '.join(DIS_PRESETS)}")
    raft = RaftFlow(RaftFlowConfig(arch=args.arch, weights=str(args.weights), iterations=args.iterations,
                                   device=args.device))
    config = preset(args.preset).replace(**parse_synth(args.synth)).replace(width=args.width, height=args.height,
                                                                           frames=2)
    pairs = synth_pairs(config, seeds)
    methods = {"raft": raft}
    for name in dis_names:
        methods[f"dis_{name}"] = DISFlow(DISFlowConfig(preset=name, scale=1.0))
    methods["zero"] = zero_flow
    scores = score_methods(methods, pairs)
    trained = raft.meta.get("data", {}).get("train_seeds") if isinstance(raft.meta.get("data"), dict) else None
    overlap = bool(trained) and not (seeds.stop <= trained[0] or trained[1] <= seeds.start)
    summary = {
        "weights": str(args.weights), "arch": args.arch, "iterations": args.iterations, "device": str(raft.device),
        "preset": args.preset, "synth": {k: list(v) if isinstance(v, tuple) else v
                                          for k, v in parse_synth(args.synth).items()}, "size": [args.width, args.height], "split_seeds": [seeds.start, seeds.stop],
        "pairs": len(pairs), "split_overlaps_training": overlap, "methods": [s.as_dict() for s in scores],
    }
    if args.plot:
        summary["plot"] = str(_plot(args.plot, scores, pairs[0], methods))
    return summary


def _print_table(summary: dict[str, Any]) -> None:
    w, h = summary["size"]
    changed = "".join(f", {k}={v}" for k, v in summary["synth"].items())
    print(f"flow EPE on {summary['pairs']} held-out pairs (synth '{summary['preset']}'{changed}, seeds "
          f"{summary['split_seeds'][0]}:{summary['split_seeds'][1]}, {w}x{h}); "
          f"raft = {summary['arch']} x{summary['iterations']} from {summary['weights']} on {summary['device']}")
    if summary["split_overlaps_training"]:
        print("WARNING: these seeds overlap the weights' training seeds; the numbers are not held-out")
    print(f"{'method':<12} {'EPE px':>8} {'>1px':>7} {'>3px':>7} {'EPE@bnd':>8} {'ms/pair':>9}")
    for m in summary["methods"]:
        print(f"{m['name']:<12} {m['epe']:>8.3f} {100 * m['over_1px']:>6.1f}% {100 * m['over_3px']:>6.1f}% "
              f"{m['epe_boundary']:>8.3f} {m['ms_per_pair']:>9.1f}")
    print(f"EPE@bnd: mean EPE within {BOUNDARY_RADIUS} px of a motion boundary of the true flow "
          f"(neighbours differing by > {BOUNDARY_STEP:g} px)")
    if "plot" in summary:
        print(f"plot: {summary['plot']}")


def _plot(path: Path, scores: list[MethodScore], pair: Any, methods: dict[str, Any]) -> Path:
    plt = pyplot()

    flows = {name: fn(pair.image1, pair.image2) for name, fn in methods.items() if name != "zero"}
    top = float(np.percentile(np.linalg.norm(pair.flow, axis=2), 99)) or 1.0
    panels = [("frame t", pair.image1), ("true flow", flow_colour(pair.flow, top))]
    panels += [(name, flow_colour(f, top)) for name, f in flows.items()]
    fig = plt.figure(figsize=(3.2 * len(panels), 6.2), layout="constrained")
    for i, (title, img) in enumerate(panels):
        ax = fig.add_subplot(2, len(panels), i + 1)
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(2, 2, 3)
    names = [s.name for s in scores]
    ax.bar(names, [s.epe for s in scores], color="tab:blue")
    ax.set_ylabel("mean EPE (px)")
    ax.grid(axis="y", alpha=0.3)
    ax = fig.add_subplot(2, 2, 4)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [100 * s.over_1px for s in scores], 0.4, label="> 1 px")
    ax.bar(x + 0.2, [100 * s.over_3px for s in scores], 0.4, label="> 3 px")
    ax.set_xticks(x, names)
    ax.set_ylabel("% of pixels")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"flow on held-out synthetic pair seed {pair.seed} (colour scale {top:.1f} px)", fontsize=10)
    save_figure(fig, path, dpi=90, tight=False)
    return path
