"""movseg train <stage>: train one learned stage from a YAML config (+ key=value overrides).

  flow        RAFT (torchvision raft_small/raft_large) on the synthetic generator's exact flow
  motion      seed 000's motion stream: Mask R-CNN on flow images, one class "moving"
  appearance  seed 000's objectness Mask R-CNN on RGB (COCO-format data or synthetic frames)
  joint       seed 000's two-stream model from the motion and appearance weights (Table 3 freezing)
  stemseg     seed 004's spatio-temporal embedding network on synthetic, animated-image and video clips
  saliency    the geometric pipeline's appearance prior: ImageNet MobileNetV2 + decoder, distilled from
              U^2-Net-p on DAVIS-2016 train frames and masks
  refine      the geometric pipeline's learned refinement: a small network on its maps (motion evidence,
              carried probability, colour and saliency fusion, the frame), trained on DAVIS-2016 train

Runs on one CPU/GPU, or as DDP when started by torchrun (WORLD_SIZE > 1). Writes to the config's
out_dir: metrics.jsonl (step, loss terms, lr, seconds, held-out scores), metrics.png, checkpoint_last.pt, and the final
weights in our checkpoint format.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.model_files import ModelFileError
from movseg_ros.synth.config import SynthConfigError
from movseg_ros.training import STAGES
from movseg_ros.training.common import TrainConfigError, load_train_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=sorted(STAGES), help="what to train")
    p.add_argument("--config", type=Path, help="YAML config (keys of the stage's config dataclass)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (YAML value), repeatable, e.g. --set iterations=500")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/checkpoint_last.pt")
    p.add_argument("--out-dir", help="override the config's out_dir")
    p.add_argument("--iterations", type=int, help="override the config's iterations")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), help="override the config's device")
    p.add_argument("--json", type=Path, help="also write the summary here as JSON")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(STAGES[args.stage])
    overrides = list(args.overrides)
    for key in ("out_dir", "iterations", "device"):
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.resume:
        overrides.append("resume=true")
    try:
        config = load_train_config(module.CONFIG, args.config, overrides)
        summary = module.train(config, command=_command_line(args))
    except (TrainConfigError, SynthConfigError, ModelFileError, DatasetError, FileNotFoundError) as e:
        print(f"movseg train: error: {e}", file=sys.stderr)
        return 2
    if summary.get("weights"):
        if "val_seg_map50" in summary:
            scores = (f"held-out det mAP@0.5 {_fmt(summary.get('val_det_map50'))}, "
                      f"mask mAP@0.5 {_fmt(summary.get('val_seg_map50'))}")
        elif args.stage == "stemseg":
            scores = f"held-out tube IoU {_fmt(summary.get('val_tube_iou'))}"
        elif args.stage in ("saliency", "mpnet"):
            scores = f"held-aside mask IoU {_fmt(summary.get('val_iou'))}"
        elif args.stage == "visual_memory":
            scores = (f"held-aside J online {_fmt(summary.get('val_j_online'))}, "
                      f"offline {_fmt(summary.get('val_j_offline'))}")
        elif args.stage == "refine":
            scores = (f"held-aside frame IoU {_fmt(summary.get('val_iou'))} "
                      f"(the fusion alone {_fmt(summary.get('val_iou_fused'))})")
        else:
            scores = (f"train EPE {_fmt(summary.get('final_train_epe'))}, "
                      f"held-out EPE {_fmt(summary.get('val_epe'))}")
        print(f"{args.stage}: {summary['step']} steps in {summary['wall_seconds']:.0f} s; "
              f"final loss {_fmt(summary.get('final_loss'))}, {scores}")
        print(f"weights  {summary['weights']}\nmetrics  {summary['metrics']}\nplot     {summary['plot']}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command as given (config, overrides), for the weights' metadata."""
    parts = ["movseg", "train", args.stage] + (["--config", str(args.config)] if args.config else [])
    parts += [f"--set {o}" for o in args.overrides]
    for key in ("out_dir", "iterations", "device"):
        if getattr(args, key) is not None:
            parts.append(f"--{key.replace('_', '-')} {getattr(args, key)}")
    return " ".join(parts + (["--resume"] if args.resume else []))


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"
