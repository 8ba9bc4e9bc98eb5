"""movseg eval: score predictions against ground truth, or run a pipeline over a data set and score it.

Three sources of predictions:
  (default)        run the pipeline over every sequence of DATA and write its predictions in the
                   DAVIS format (binary/ and instances/) so the official tools can score the same files;
  --predictions D  DAVIS-format PNG folders (D/<seq>/<frame>.png, or `movseg run` output
                   D/<seq>/labels/), or MOTS text files D/<seq>.txt;
  --bag B          /movseg/instances recorded in a bag (e.g. by `ros2 bag record`), matched by header
                   stamp to the truth topic of B or of --truth (a bag written by `movseg bag make`).
Metrics by data set: DAVIS J/F (Mean, Recall, Decay) binary and instance-level everywhere; FBMS
official and proposed P/R/F, N and ΔObj on FBMS; sMOTSA, MOTSA, IDS and HOTA on KITTI-MOTS.
A truncated or corrupt frame, annotation or prediction file is an error (exit 2) naming it; with
--allow-partial that frame is left out of the pipeline's input and of the scores, and listed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from movseg_ros.bags.errors import BagError
from movseg_ros.config_io import load_pipeline_config
from movseg_ros.datasets import open_dataset
from movseg_ros.datasets.davis import default_root
from movseg_ros.datasets.errors import BadImageFile, DatasetError, read_or_skip
from movseg_ros.datasets.predictions import read_prediction_folder, write_davis_predictions
from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.evaluation.errors import MetricInputError
from movseg_ros.evaluation.relabel import DAVIS_UNSUPERVISED_MAX
from movseg_ros.evaluation.sequence_eval import METRIC_SETS, EvalProtocol, combine, jsonable, score_sequence
from movseg_ros.evaluation.stamped import ScoringError
from movseg_ros.frame import Frame
from movseg_ros.image_format import PATH_LIMIT
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.safe_text import printable
from movseg_ros.sources import stamp_ns
from movseg_ros.plots import pyplot, save_figure


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", type=Path,
                   help="data set root or one sequence: DAVIS, FBMS-59, KITTI-MOTS, YouTube-VOS "
                        "(default: $MOVSEG_DAVIS, else ../shared/data/davis2016)")
    p.add_argument("--kind", default="auto", help="data set layout: auto, davis, fbms, mots, ytvos")
    p.add_argument("--sequences", nargs="*", help="only these sequences")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--predictions", type=Path, help="score these prediction files instead of running a pipeline")
    source.add_argument("--bag", type=Path, help="score /movseg/instances recorded in this bag")
    p.add_argument("--truth", type=Path, help="with --bag: a bag holding the ground-truth topic, if --bag has none")
    p.add_argument("--instances-topic", default="/movseg/instances", help="with --bag: the predictions topic")
    p.add_argument("--truth-topic", default="/camera/ground_truth", help="with --bag: the ground-truth topic")
    p.add_argument("--config", type=Path, help="pipeline YAML or the node's ROS params file")
    p.add_argument("--offline", action="store_true", help="forward-backward tracking over each whole sequence")
    p.add_argument("--write-predictions", type=Path, default=Path("out/eval/predictions"),
                   help="where the pipeline's predictions go, as binary/<seq>/ and instances/<seq>/ PNGs "
                        "(default out/eval/predictions)")
    p.add_argument("--metrics", nargs="+", choices=METRIC_SETS, help="metric families (default: by data set)")
    p.add_argument("--frames", choices=("all", "inner"), default="all",
                   help="all annotated frames (unsupervised protocol, default) or all but the first and last")
    p.add_argument("--allow-partial", action="store_true",
                   help="score the frames that have predictions and mark the result partial; a frame whose "
                        "image, annotation or prediction file is truncated, corrupt or unreadable (otherwise an "
                        "error, exit 2) is skipped: not fed to the pipeline, excluded from every metric, and "
                        "listed with its file and problem in the printed table and in --json (skipped_frames per "
                        "sequence, frames_skipped per sequence and overall)")
    p.add_argument("--json", type=Path, help="write everything (per sequence and per frame) here")
    p.add_argument("--plot", type=Path, help="write a PNG: J and F per sequence and J over time")


def run(args: argparse.Namespace) -> int:
    try:
        if args.bag:
            summary = evaluate_bag(args)
        else:
            summary = evaluate_dataset(args)
    except (DatasetError, MetricInputError, BagError, ScoringError, FileNotFoundError, ValueError) as e:
        print(f"movseg eval: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    if args.plot and summary.get("sequences"):
        _plot(summary, args.plot)
    return 0


def evaluate_dataset(args: argparse.Namespace) -> dict[str, Any]:
    """Pipeline or prediction-folder mode: a table per sequence and the overall figures."""
    data = args.data or default_root()
    sequences = open_dataset(data, args.kind, args.sequences)
    protocol = EvalProtocol(tuple(args.metrics) if args.metrics else None, args.frames, args.allow_partial)
    config = load_pipeline_config(args.config) if args.config else PipelineConfig()
    results, timings = [], {}
    for seq in tqdm(sequences, desc="eval", unit="seq", file=sys.stderr, disable=None):
        skipped: dict[int, BadImageFile] | None = {} if args.allow_partial else None
        if args.predictions:
            predictions = _read_predictions(args.predictions, seq, skipped)
        else:
            predictions, timings[seq.name] = _run_pipeline(seq, config, args.offline, skipped)
            _write_predictions(args.write_predictions, seq, predictions)
        results.append(score_sequence(seq, predictions, protocol, skipped))
    overall = combine(results)
    rows = [jsonable(r) | ({"ms_per_frame": timings[r["sequence"]]} if r["sequence"] in timings else {})
            for r in results]
    summary = {
        "data": str(data), "protocol": {"frames": args.frames, "metrics": list(protocol.metrics or [])},
        "source": str(args.predictions) if args.predictions else f"pipeline {config.pipeline}"
                  + (" (offline)" if args.offline else " (online)"),
        "predictions_written": None if args.predictions else str(args.write_predictions),
        "overall": overall, "sequences": rows,
    }
    print(_table(summary))
    return summary


def _run_pipeline(seq: VideoSequence, config: PipelineConfig, offline: bool,
                  skipped: dict[int, BadImageFile] | None) -> tuple[list[np.ndarray | None], float]:
    """The pipeline's label map of every frame of the sequence (None for a frame `skipped` took as
    unreadable; without that record such a frame is an error), and its time per frame (ms)."""
    pipeline = Pipeline(config)
    frames = _readable_frames(seq, skipped)
    start = time.perf_counter()
    outputs = pipeline.run_offline(frames) if offline else [o for f in frames for o in pipeline.process(f)] + pipeline.finish()
    seconds = time.perf_counter() - start
    expected = len(seq) - len(skipped or {})
    labels = {o.frame.index: o.label_map for o in outputs}
    if len(outputs) != expected or len(labels) != expected:
        raise RuntimeError(f"{seq.name}: {expected} frames in but {len(outputs)} outputs")
    return [labels.get(i) for i in range(len(seq))], 1000.0 * seconds / max(1, expected)


def _readable_frames(seq: VideoSequence, skipped: dict[int, BadImageFile] | None) -> Iterator[Frame]:
    """The sequence's frames as pipeline inputs, leaving out (into `skipped`, when given) unreadable ones."""
    for i in range(len(seq)):
        frame = read_or_skip(lambda k: seq.frame(k, stamp_ns(k, seq.fps)), i, skipped)
        if frame is not None:
            yield frame


def _write_predictions(folder: Path, seq: VideoSequence, predictions: list[np.ndarray | None]) -> None:
    """DAVIS 2016 (binary) and DAVIS 2017 unsupervised (at most 20 ids) files of one sequence; a skipped
    frame has no file."""
    present = [i for i, p in enumerate(predictions) if p is not None]
    maps, names = [predictions[i] for i in present], [seq.frame_names[i] for i in present]
    write_davis_predictions(folder / "binary", seq.name, maps, "binary", names)
    write_davis_predictions(folder / "instances", seq.name, maps, "instances", names,
                            max_objects=DAVIS_UNSUPERVISED_MAX)


def _read_predictions(folder: Path, seq: VideoSequence, skipped: dict[int, BadImageFile] | None
                      ) -> list[np.ndarray | None]:
    """One entry per frame: MOTS text (folder/<seq>.txt) or DAVIS-format PNGs; a `skipped` record (partial
    results allowed) takes unreadable prediction files."""
    txt = folder / f"{seq.name}.txt"
    if txt.is_file():
        from movseg_ros.datasets.mots import read_mots_label_maps

        return list(read_mots_label_maps(txt, len(seq), seq.size))
    return read_prediction_folder(folder, seq, skipped is not None).label_maps(skipped)


def evaluate_bag(args: argparse.Namespace) -> dict[str, Any]:
    """Bag mode: recorded instances against truth label maps with the same header stamps."""
    from movseg_ros.bags.reader import bag_info, read_label_maps
    from movseg_ros.evaluation.stamped import StampedScorer

    truth_bag = args.truth or args.bag
    if not any(t.name == args.truth_topic for t in bag_info(truth_bag).topics):
        raise BagError(truth_bag, f"no ground-truth topic {args.truth_topic}"
                       + ("" if args.truth else "; give the bag that has it with --truth"))
    truth = read_label_maps(truth_bag, args.truth_topic)
    predictions = read_label_maps(args.bag, args.instances_topic)
    scorer = StampedScorer(dict(truth), args.bag.name)
    for stamp in sorted(predictions):
        scorer.add(stamp, predictions[stamp])
    result = scorer.result()
    if result["partial"] and not args.allow_partial:
        raise ScoringError(f"{args.bag}: {result['missing_predictions']} of {result['frames_with_truth']} truth "
                           f"frames have no {args.instances_topic} message with their stamp; "
                           f"use --allow-partial to score the rest")
    summary = {"bag": str(args.bag), "truth_bag": str(truth_bag), "instances_topic": args.instances_topic,
               "truth_topic": args.truth_topic, "metrics": result}
    b = result["binary"]
    if b is None:
        raise ScoringError(f"{args.bag}: no {args.instances_topic} message matches a truth stamp")
    print(f"movseg eval: {args.bag} {args.instances_topic} against {truth_bag} {args.truth_topic}")
    print(f"  {result['frames_scored']} of {result['frames_with_truth']} truth frames scored"
          + ("  PARTIAL" if result["partial"] else "")
          + f"; {result['predictions_without_truth']} predictions had no truth")
    print(f"  DAVIS binary  J {b['J']['mean']:.3f} (recall {b['J']['recall']:.3f}, decay {b['J']['decay']:.3f})"
          f"  F {b['F']['mean']:.3f}  J&F {b['JF']:.3f}")
    print(f"  instances     J&F {result['instances']['J&F-Mean']:.3f}")
    return summary


def _table(summary: dict[str, Any]) -> str:
    """Per-sequence rows and the overall line of each metric family."""
    rows, overall = summary["sequences"], summary["overall"]
    lines = [f"movseg eval: {summary['source']} on {summary['data']} ({summary['protocol']['frames']} annotated frames)"]
    if any("davis" in r for r in rows):
        head = f"{'sequence':<20}{'frames':>7}{'J-M':>7}{'J-R':>7}{'J-D':>7}{'F-M':>7}{'F-R':>7}{'F-D':>7}{'J&F':>7}{'inst':>7}"
        lines += ["DAVIS (binary J, F; inst = instance J&F, DAVIS-2017 unsupervised matching)", head + f"{'ms/f':>8}"]
        for r in rows:
            d = r["davis"]
            ms = f"{r['ms_per_frame']:>8.1f}" if "ms_per_frame" in r else ""
            lines.append(f"{r['sequence']:<20}{r['frames_scored']:>7}{d['J']['mean']:>7.3f}{d['J']['recall']:>7.3f}"
                         f"{d['J']['decay']:>7.3f}{d['F']['mean']:>7.3f}{d['F']['recall']:>7.3f}{d['F']['decay']:>7.3f}"
                         f"{d['J&F']:>7.3f}{d['instances']['J&F-Mean']:>7.3f}{ms}" + ("  partial" if r["partial"] else ""))
        o, i = overall["davis_binary"], overall["davis_instances"]
        lines.append(f"{'mean':<20}{sum(r['frames_scored'] for r in rows):>7}{o['J-Mean']:>7.3f}{o['J-Recall']:>7.3f}"
                     f"{o['J-Decay']:>7.3f}{o['F-Mean']:>7.3f}{o['F-Recall']:>7.3f}{o['F-Decay']:>7.3f}"
                     f"{o['J&F-Mean']:>7.3f}{i['J&F-Mean']:>7.3f}")
    if "fbms_official" in overall:
        lines.append("FBMS (official: unmatched predictions ignored; proposed, seed 000: they count against P)")
        lines.append(f"{'sequence':<20}{'P':>7}{'R':>7}{'F':>7}{'N':>4}  |{'P':>7}{'R':>7}{'F':>7}  objects pred/true")
        for r in rows:
            f = r["fbms"]
            of, pr = f["official"], f["proposed"]
            lines.append(f"{r['sequence']:<20}{of['P']:>7.3f}{of['R']:>7.3f}{of['F']:>7.3f}{of['N']:>4}  |{pr['P']:>7.3f}"
                         f"{pr['R']:>7.3f}{pr['F']:>7.3f}  {f['objects_predicted']}/{f['objects_true']}")
        of, pr = overall["fbms_official"], overall["fbms_proposed"]
        lines.append(f"{'overall':<20}{of['P']:>7.3f}{of['R']:>7.3f}{of['F']:>7.3f}{of['N']:>4}  |{pr['P']:>7.3f}"
                     f"{pr['R']:>7.3f}{pr['F']:>7.3f}  ΔObj {overall['delta_obj']:.2f}")
    if "mots" in overall:
        lines.append("MOTS (trackeval)")
        lines.append(f"{'sequence':<20}{'sMOTSA':>8}{'MOTSA':>8}{'IDS':>6}{'HOTA':>8}")
        for r in rows:
            if "mots" in r:
                m = r["mots"]
                lines.append(f"{r['sequence']:<20}{m['sMOTSA']:>8.3f}{m['MOTSA']:>8.3f}{m['IDS']:>6}{m['HOTA']:>8.3f}")
        m = overall["mots"]
        lines.append(f"{'combined':<20}{m['sMOTSA']:>8.3f}{m['MOTSA']:>8.3f}{m['IDS']:>6}{m['HOTA']:>8.3f}")
    if any(r["missing_frames"] for r in rows):
        lines.append("PARTIAL: some annotated frames had no prediction (listed per sequence in --json)")
    if overall["frames_skipped"]:
        lines.append(f"SKIPPED: {overall['frames_skipped']} frame(s) with an unreadable file, left out of the "
                     "pipeline's input and the scores (--allow-partial):")
        lines += [f"  {r['sequence']} frame {printable(s['frame'])}: {printable(s['file'], PATH_LIMIT)}: {s['problem']}"
                  for r in rows for s in r["skipped_frames"]]
    if summary.get("predictions_written"):
        lines.append(f"predictions written to {summary['predictions_written']}/binary and /instances (DAVIS format)")
    return "\n".join(lines)


def _plot(summary: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    rows = [r for r in summary["sequences"] if "davis" in r]
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(13, 4))
    x = np.arange(len(rows))
    for k, (key, colour) in enumerate((("J", "tab:blue"), ("F", "tab:orange"))):
        bars.bar(x + (k - 0.5) * 0.4, [r["davis"][key]["mean"] for r in rows], 0.4, color=colour, label=key)
    o = summary["overall"].get("davis_binary", {})
    if o:
        bars.axhline(o["J-Mean"], color="tab:blue", linestyle="--", label=f"mean J {o['J-Mean']:.3f}")
        bars.axhline(o["F-Mean"], color="tab:orange", linestyle=":", label=f"mean F {o['F-Mean']:.3f}")
    bars.set_xticks(x, [r["sequence"] for r in rows], rotation=30, ha="right")
    bars.set_ylim(0, 1)
    bars.legend(fontsize=7)
    for r in rows:
        lines.plot(r["davis"]["J_per_frame"], label=r["sequence"])
    lines.set_xlabel("scored frame")
    lines.set_ylabel("J")
    lines.set_ylim(0, 1)
    lines.legend(fontsize=7)
    save_figure(fig, path)
