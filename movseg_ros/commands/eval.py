"""movseg eval: run the pipeline over DAVIS-layout sequences and print J per sequence.

Binary DAVIS task: the union of the visible tracks' masks is scored against the annotation;
J is the mean IoU over all frames of a sequence (the first frame included: an online pipeline
has no motion there yet), and the mean over sequences.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from movseg_ros.config_io import load_pipeline_config
from movseg_ros.datasets.davis import DavisSequence, default_root, find_sequences
from movseg_ros.evaluation.davis_metrics import jaccard
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.sources import stamp_ns


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="folder of DAVIS sequences (default: $MOVSEG_DAVIS, else ../shared/data/davis2016)")
    p.add_argument("--sequences", nargs="*", help="only these sequences")
    p.add_argument("--config", type=Path, help="pipeline YAML or the node's ROS params file")
    p.add_argument("--offline", action="store_true", help="forward-backward tracking over each whole sequence")
    p.add_argument("--json", type=Path, help="write per-sequence and per-frame J here")
    p.add_argument("--plot", type=Path, help="write a PNG: J per sequence and J over time")


def score_sequence(seq: DavisSequence, config: PipelineConfig, offline: bool) -> dict[str, Any]:
    """J of every frame of one sequence, and the time the pipeline took."""
    if len(seq.annotated) != len(seq):
        raise ValueError(f"sequence {seq.name}: {len(seq.annotated)} of {len(seq)} frames annotated; eval scores every frame")
    pipeline = Pipeline(config)
    frames = (seq.frame(i, stamp_ns(i, 30.0)) for i in range(len(seq)))
    start = time.perf_counter()
    if offline:
        outputs = pipeline.run_offline(frames)
    else:
        outputs = [o for f in frames for o in pipeline.process(f)]
    seconds = time.perf_counter() - start
    if len(outputs) != len(seq):
        raise RuntimeError(f"{seq.name}: {len(seq)} frames in but {len(outputs)} outputs")
    js = [jaccard(o.foreground(), seq.binary(i)) for i, o in enumerate(outputs)]
    return {"sequence": seq.name, "frames": len(seq), "J": float(np.mean(js)), "J_per_frame": js,
            "ms_per_frame": 1000.0 * seconds / len(seq)}


def run(args: argparse.Namespace) -> int:
    try:
        config = load_pipeline_config(args.config) if args.config else PipelineConfig()
        args.data = args.data or default_root()
        sequences = find_sequences(args.data, args.sequences)
    except (FileNotFoundError, ValueError) as e:
        print(f"movseg eval: error: {e}", file=sys.stderr)
        return 2
    rows = [score_sequence(s, config, args.offline) for s in tqdm(sequences, desc="eval", unit="seq", file=sys.stderr)]
    mean_j = float(np.mean([r["J"] for r in rows]))
    mode = "offline (forward-backward)" if args.offline else "online"
    print(f"DAVIS binary J, pipeline {config.pipeline}, {mode}, {args.data}")
    print(f"{'sequence':<20}{'frames':>7}{'J':>8}{'ms/frame':>10}")
    for r in rows:
        print(f"{r['sequence']:<20}{r['frames']:>7}{r['J']:>8.3f}{r['ms_per_frame']:>10.1f}")
    print(f"{'mean':<20}{sum(r['frames'] for r in rows):>7}{mean_j:>8.3f}")
    summary = {"pipeline": config.pipeline, "mode": mode, "data": str(args.data), "mean_J": mean_j, "sequences": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    if args.plot:
        _plot(rows, mean_j, args.plot)
    return 0


def _plot(rows: list[dict[str, Any]], mean_j: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, lines) = plt.subplots(1, 2, figsize=(12, 4))
    names = [r["sequence"] for r in rows]
    bars.bar(names, [r["J"] for r in rows], color="tab:blue")
    bars.axhline(mean_j, color="k", linestyle="--", label=f"mean {mean_j:.3f}")
    bars.set_ylim(0, 1)
    bars.set_ylabel("J (mean IoU)")
    bars.tick_params(axis="x", rotation=30)
    bars.legend()
    for r in rows:
        lines.plot(r["J_per_frame"], label=r["sequence"])
    lines.set_xlabel("frame")
    lines.set_ylabel("J")
    lines.set_ylim(0, 1)
    lines.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
