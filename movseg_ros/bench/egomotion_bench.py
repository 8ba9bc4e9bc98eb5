"""`movseg bench egomotion`: does a gyro prior help ego-motion on fast-pan clips with a large mover?

Each seeded pan clip (movseg_ros.synth.pan_clip) goes through the geometric pipeline twice: image-only
(frames without a rotation) and with the gyro prior (each frame's rotation integrated from the clip's
noisy, biased gyro samples). Per frame, the background residual is the median |flow - ego flow| over
the truth background, in the pipeline's own flow at its work size; instance J&F is the DAVIS-2017
unsupervised score of the pipeline's tracks (the project's metric code).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from movseg_ros.evaluation.davis_metrics import InstanceScores, summarise
from movseg_ros.evaluation.sequence_eval import EvalProtocol, score_sequence
from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.reports.array_sequence import array_sequence
from movseg_ros.rotation_prior import GyroIntegrator, frame_rotation
from movseg_ros.synth.pan_clip import PanClip, PanClipConfig, generate_pan_clip

VARIANTS = ("image_only", "gyro_prior")
TARGET_REDUCTION = 0.30  # the target: background residual at least 30 % lower with the prior
IMU_AHEAD_NS = 10_000_000  # gyro samples this far past a frame's stamp have arrived when it is processed
FAILED_PX = 1.0  # a frame whose background residual exceeds this (work px) counts as an ego-motion failure


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=int, default=10, help="pan clips (seeds --seed .. --seed + clips - 1)")
    p.add_argument("--seed", type=int, default=0, help="first clip seed (default 0; tuning used seeds >= 1000)")
    p.add_argument("--frames", type=int, default=PanClipConfig.frames, help="frames a clip")
    p.add_argument("--texture-source", choices=("auto", "davis", "skimage"), default="auto",
                   help="background and object photos (auto: DAVIS when present)")
    p.add_argument("--config", type=Path, default=None, help="pipeline config YAML (default: the geometric defaults)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")


def run(args: argparse.Namespace) -> int:
    if args.clips < 1 or args.seed < 0 or args.frames < 2:
        print(f"movseg bench egomotion: error: need --clips >= 1, --seed >= 0 and --frames >= 2, got "
              f"{args.clips}, {args.seed} and {args.frames}", file=sys.stderr)
        return 2
    config = PipelineConfig()
    if args.config is not None:
        from movseg_ros.config_io import load_pipeline_config

        config = load_pipeline_config(args.config)
    if config.pipeline != "geometric":
        print(f"movseg bench egomotion: error: the pipeline must be geometric, {args.config} sets '{config.pipeline}'",
              file=sys.stderr)
        return 2
    clip_config = PanClipConfig(frames=args.frames, texture_source=args.texture_source)
    result = egomotion_bench(config, clip_config, range(args.seed, args.seed + args.clips))
    result["arguments"] = {"clips": args.clips, "seed": args.seed, "frames": args.frames,
                           "texture_source": args.texture_source, "config": str(args.config) if args.config else None}
    print("\n".join(summary_lines(result)))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def egomotion_bench(config: PipelineConfig, clip_config: PanClipConfig, seeds: range) -> dict[str, Any]:
    """Both variants over the clips of `seeds`: residuals per frame, instance J&F per clip and overall."""
    pipelines = {name: Pipeline(config) for name in VARIANTS}
    residuals: dict[str, list[float]] = {name: [] for name in VARIANTS}
    scores: dict[str, list[InstanceScores]] = {name: [] for name in VARIANTS}
    clips, source = [], ""
    for seed in tqdm(seeds, desc="bench egomotion", unit="clip", file=sys.stderr, disable=None):
        clip = generate_pan_clip(clip_config, seed)
        source = clip.texture_source
        row: dict[str, Any] = {"seed": seed, "object_area": float((~clip.background).mean()),
                               "pan_px": float(np.median(_centre_motion(clip)))}
        for name, pipeline in pipelines.items():
            per_frame, labels = run_clip(pipeline, clip, with_gyro=name == "gyro_prior")
            instances = score_sequence(array_sequence(f"pan{seed}", clip.images, clip.instances), labels,
                                       EvalProtocol(metrics=("davis",)))["davis"]["instances"]
            residuals[name] += per_frame
            scores[name].append(instances)
            row[name] = {"residual_px": float(np.mean(per_frame)), "instance_jf": summarise([instances]).jf_mean}
        clips.append(row)
    summary = {name: {**_residual_stats(residuals[name]), "instance_jf": summarise(scores[name]).jf_mean}
               for name in VARIANTS}
    image, gyro = summary["image_only"], summary["gyro_prior"]
    reduction = 1.0 - gyro["residual_mean_px"] / image["residual_mean_px"] if image["residual_mean_px"] > 0 else 0.0
    return {
        "clips": len(clips), "seeds": [seeds.start, seeds.stop - 1], "texture_source": source,
        "clip_config": dataclasses.asdict(clip_config), "pipeline": config.to_dict()["geometric"],
        "variants": summary, "residual_reduction": reduction,
        "target": {"residual_reduction_at_least": TARGET_REDUCTION, "residual_met": reduction >= TARGET_REDUCTION,
                   "jf_not_lower": gyro["instance_jf"] >= image["instance_jf"]},
        "per_clip": clips,
    }


def run_clip(pipeline: Pipeline, clip: PanClip, with_gyro: bool) -> tuple[list[float], list[np.ndarray]]:
    """The clip through the pipeline as one stream: per-frame background residuals (from the second frame) and label maps.

    With the gyro, each frame carries the rotation integrated from the samples that have arrived by then.
    """
    pipeline.reset()
    gyro = GyroIntegrator()
    fed = 0
    residuals, labels = [], []
    for t in range(len(clip.images)):
        rotation = None
        if with_gyro:
            while fed < len(clip.gyro_stamps_ns) and clip.gyro_stamps_ns[fed] <= clip.stamps_ns[t] + IMU_AHEAD_NS:
                gyro.add(int(clip.gyro_stamps_ns[fed]), clip.gyro[fed])
                fed += 1
            change = gyro.rotation(int(clip.stamps_ns[t - 1]), int(clip.stamps_ns[t])) if t > 0 else None
            rotation = None if change is None else frame_rotation(change, clip.camera_from_sensor)
        frame = Frame(clip.images[t], int(clip.stamps_ns[t]), "pan", t, intrinsics=clip.intrinsics, rotation=rotation)
        (out,) = pipeline.process(frame)
        labels.append(out.label_map)
        residual = pipeline.segmenter.last_residual
        if residual is not None:
            mask = clip.steady_background(t, residual.shape[:2])
            residuals.append(float(np.median(np.linalg.norm(residual[mask], axis=-1))))
    return residuals, labels


def _centre_motion(clip: PanClip) -> np.ndarray:
    """How far (px) the true rotation moves the image centre each frame."""
    k = clip.intrinsics
    centre = np.array([k.cx, k.cy, 1.0])
    moved = [clip.truth_homography(t) @ centre for t in range(1, len(clip.images))]
    return np.array([np.linalg.norm(m[:2] / m[2] - centre[:2]) for m in moved])


def _residual_stats(per_frame: list[float]) -> dict[str, float]:
    """Mean, median and 90th percentile of the per-frame residuals, and the share of frames over FAILED_PX."""
    a = np.asarray(per_frame)
    return {"residual_mean_px": float(a.mean()), "residual_median_px": float(np.median(a)),
            "residual_p90_px": float(np.percentile(a, 90)), "frames_over_1px": float((a > FAILED_PX).mean()),
            "frames": int(a.size)}


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The human-readable table: residuals and instance J&F per variant, the reduction, the target."""
    v = result["variants"]
    lines = [f"ego-motion on {result['clips']} fast-pan clips (seeds {result['seeds'][0]}..{result['seeds'][1]}, "
             f"{result['clip_config']['width']}x{result['clip_config']['height']}, {result['texture_source']} photos), "
             f"geometric pipeline at work width {result['pipeline']['work_width']}",
             f"{'':<12}{'residual mean':>14}{'median':>8}{'p90':>8}{'>1px':>7}{'inst J&F':>10}   (background residual, work px)"]
    for name in VARIANTS:
        s = v[name]
        lines.append(f"{name:<12}{s['residual_mean_px']:>14.3f}{s['residual_median_px']:>8.3f}{s['residual_p90_px']:>8.3f}"
                     f"{100 * s['frames_over_1px']:>6.1f}%{s['instance_jf']:>10.3f}")
    t = result["target"]
    lines.append(f"residual {100 * result['residual_reduction']:.1f} % lower with the gyro prior "
                 f"(target >= {100 * t['residual_reduction_at_least']:.0f} %: {'met' if t['residual_met'] else 'NOT met'}); "
                 f"instance J&F {'not lower' if t['jf_not_lower'] else 'LOWER'} with the prior")
    return lines
