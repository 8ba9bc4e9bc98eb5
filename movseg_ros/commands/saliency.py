"""movseg saliency: the appearance prior's data and scores.

  teach DATA OUT   U^2-Net-p maps of every k-th frame of a DAVIS-layout set, as OUT/<seq>/<frame>.png (the
                   teacher maps `movseg train saliency` learns from; about 1 s a frame on 2 cores; resumes)
  score DATA       mean IoU to the masks of the saliency maps of U^2-Net-p and/or our network (single frames)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.image_format import read_image_file
from movseg_ros.model_files import ModelFileError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("teach", help="U^2-Net-p teacher maps of a DAVIS-layout set")
    t.add_argument("data", type=Path, help="DAVIS-layout folder (e.g. ../shared/data/davis2016-train)")
    t.add_argument("out", type=Path, help="where <seq>/<frame>.png maps go")
    t.add_argument("--step", type=int, default=6, help="every k-th frame (default 6)")
    t.add_argument("--exclude", nargs="*", default=None,
                   help="sequences to leave out (default: the training stage's held-aside ones)")
    t.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("score", help="single-frame IoU of saliency maps to the masks")
    s.add_argument("data", type=Path, help="DAVIS-layout folder")
    s.add_argument("--sequences", nargs="*", help="only these sequences")
    s.add_argument("--step", type=int, default=5, help="every k-th frame (default 5)")
    s.add_argument("--models", nargs="+", choices=("network", "u2netp"), default=["network"])
    s.add_argument("--weights", type=Path, help="our network's file (default: the shipped one)")
    s.add_argument("--width", type=int, default=256, help="our network's input width (default 256)")
    s.add_argument("--json", type=Path, help="write the scores here")


def run(args: argparse.Namespace) -> int:
    try:
        return _teach(args) if args.action == "teach" else _score(args)
    except (DatasetError, ModelFileError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"movseg saliency: error: {e}", file=sys.stderr)
        return 2


def _teach(args: argparse.Namespace) -> int:
    from movseg_ros.saliency.data import davis_frames
    from movseg_ros.saliency.u2netp import U2NetP
    from movseg_ros.tuning.data import HELD_ASIDE

    if args.step < 1:
        raise ValueError(f"--step must be >= 1, got {args.step}")
    exclude = tuple(HELD_ASIDE if args.exclude is None else args.exclude)
    items = davis_frames(args.data, exclude=exclude, step=args.step)
    todo = [i for i in items if not (args.out / i.sequence / f"{i.image.stem}.png").is_file()]
    model = U2NetP(threads=args.threads)
    start = time.perf_counter()
    for item in tqdm(todo, desc="teach", unit="frame", file=sys.stderr, disable=None):
        rgb = read_image_file(item.image)
        out = args.out / item.sequence / f"{item.image.stem}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), (model(rgb) * 255 + 0.5).astype(np.uint8))
    print(f"movseg saliency teach: {len(todo)} maps made, {len(items) - len(todo)} were there "
          f"({time.perf_counter() - start:.0f} s); left out: {', '.join(exclude) or 'none'}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from movseg_ros.paths import weights_file
    from movseg_ros.saliency.data import davis_frames, read_item
    from movseg_ros.saliency.predictor import SHIPPED, SaliencyPredictor
    from movseg_ros.saliency.u2netp import U2NetP

    items = davis_frames(args.data, sequences=args.sequences, step=args.step)
    models = {}
    if "network" in args.models:
        models["network"] = SaliencyPredictor(weights_file(str(args.weights or ""), SHIPPED), args.width)
    if "u2netp" in args.models:
        models["u2netp"] = U2NetP()
    per_seq: dict[str, dict[str, list[float]]] = {}
    seconds = {name: 0.0 for name in models}
    for item in tqdm(items, desc="score", unit="frame", file=sys.stderr, disable=None):
        rgb, mask, _ = read_item(item)
        for name, model in models.items():
            t0 = time.perf_counter()
            pred = model(rgb) > 0.5
            seconds[name] += time.perf_counter() - t0
            union = np.count_nonzero(pred | mask)
            iou = np.count_nonzero(pred & mask) / union if union else 1.0
            per_seq.setdefault(item.sequence, {}).setdefault(name, []).append(iou)
    table = {seq: {n: float(np.mean(v)) for n, v in d.items()} for seq, d in per_seq.items()}
    mean = {n: float(np.mean([table[s][n] for s in table])) for n in models}
    print(f"movseg saliency score: single-frame IoU (p > 0.5) on {args.data}, every {args.step}th frame")
    print(f"{'sequence':<20}" + "".join(f"{n:>10}" for n in models))
    for seq, d in table.items():
        print(f"{seq:<20}" + "".join(f"{d[n]:>10.3f}" for n in models))
    print(f"{'mean':<20}" + "".join(f"{mean[n]:>10.3f}" for n in models))
    print("ms/frame            " + "".join(f"{1000 * seconds[n] / len(items):>10.1f}" for n in models))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"data": str(args.data), "step": args.step, "sequences": table, "mean": mean,
                                         "ms_per_frame": {n: 1000 * seconds[n] / len(items) for n in models}}, indent=1))
    return 0
