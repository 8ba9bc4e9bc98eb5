"""movseg tune: search a pipeline's settings on a DAVIS-layout training set (never on the dev set).

The sequences are split once, by a seeded shuffle, into a search split and a held-aside split the
search never sees. Trial 0 is the base config (--config, else the defaults); then --trials random
candidates drawn from --space and --refine candidates perturbed around the best so far, each
scored by mean DAVIS J over the search split with the pipeline run online, as `movseg eval` runs it.
At the end the best and the base are scored on the held-aside split (the final check).

Writes to --out (default out/tune/<pipeline>): trials.jsonl (a line per trial as it finishes;
--resume continues it in a later session), tune.json, tune.png, and best.yaml (the best settings
over the base, loadable by --config of eval, run and the node's launch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from movseg_ros.config_io import load_pipeline_config
from movseg_ros.datasets import DatasetError, open_dataset
from movseg_ros.pipeline import PipelineConfig
from movseg_ros.tuning.saliency_cache import CachedSaliencyPipelines
from movseg_ros.tuning.best_config import write_config_yaml
from movseg_ros.tuning.data import check_not_dev_set, default_train_root
from movseg_ros.tuning.errors import TuneError
from movseg_ros.tuning.search import SearchSettings, TuneResult, tune
from movseg_ros.tuning.space import SearchSpace, load_space
from movseg_ros.tuning.split import Split, named_split, split_sequences
from movseg_ros.tuning.workers import DataSpec

TOP = 5  # trials shown in the table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", type=Path,
                   help="DAVIS-layout training set (default: $MOVSEG_DAVIS_TRAIN, else "
                        "../shared/data/davis2016-train); the dev set is refused")
    p.add_argument("--space", type=Path, required=True,
                   help="search space YAML: dotted setting -> {low, high[, log: true][, int: true]} or "
                        "{choices: [...]} (e.g. config/tune_geometric.yaml)")
    p.add_argument("--config", type=Path, help="base config: pipeline YAML or the node's ROS params file (default: "
                                               "the pipeline defaults); trial 0, and what the space varies")
    p.add_argument("--kind", default="auto", help="data set layout: auto, davis, fbms, mots, ytvos (default auto)")
    p.add_argument("--sequences", nargs="*", help="only these sequences (before the split)")
    p.add_argument("--trials", type=int, default=20, help="random candidates after the base (default 20)")
    p.add_argument("--refine", type=int, default=0,
                   help="then this many candidates perturbed around the best so far, one at a time (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the candidates (default 0)")
    held = p.add_mutually_exclusive_group()
    held.add_argument("--heldout-fraction", type=float, default=0.2,
                      help="fraction of the sequences held aside for the final check (default 0.2)")
    held.add_argument("--heldout", nargs="+", metavar="SEQ", help="hold aside exactly these sequences instead")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the shuffle that picks the held-aside sequences (default 0; kept apart from --seed so "
                        "searches with other seeds are checked on the same sequences)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes scoring candidates (default 1); each keeps the frames it decoded in memory "
                        "(about 1.2 MB a 854x480 frame); results do not depend on this")
    p.add_argument("--out", type=Path, help="output folder (default out/tune/<pipeline>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the search whose trials.jsonl is in --out (same data, split, space, seed, base)")
    p.add_argument("--write-config", type=Path, metavar="F.yaml", help="also write best.yaml here")
    p.add_argument("--json", type=Path, help="also write tune.json here")


def run(args: argparse.Namespace) -> int:
    try:
        summary = tune_command(args)
    except (TuneError, DatasetError, FileNotFoundError, ValueError) as e:
        print(f"movseg tune: error: {e}", file=sys.stderr)
        return 2
    print(table(summary))
    return 0


def tune_command(args: argparse.Namespace) -> dict[str, Any]:
    """Check the inputs, run the search, write every output; the summary (tune.json's content)."""
    data = args.data or default_train_root()
    check_not_dev_set(data)
    base = load_pipeline_config(args.config) if args.config else PipelineConfig()
    space = load_space(args.space, base)
    settings = SearchSettings(args.trials, args.refine, args.seed, args.workers)
    sequences = open_dataset(data, args.kind, args.sequences)
    unscored = [s.name for s in sequences if not s.annotated]
    if unscored:
        raise TuneError(f"{data}: no ground truth to score in {', '.join(unscored)}")
    names = [s.name for s in sequences]
    split = (named_split(names, args.heldout) if args.heldout
             else split_sequences(names, args.heldout_fraction, args.split_seed))
    out = args.out or Path("out") / "tune" / base.pipeline
    spec = DataSpec(Path(data).resolve(), args.kind, tuple(sorted(names)))
    result = tune(spec, split, space, base, settings, out / "trials.jsonl", args.resume,
                  make_pipeline=CachedSaliencyPipelines())
    summary = _summary(args, data, base, space, split, settings, result, out)
    _write_outputs(summary, result, space, base, out, args)
    return summary


def _summary(args: argparse.Namespace, data: Path, base: PipelineConfig, space: SearchSpace, split: Split,
             settings: SearchSettings, result: TuneResult, out: Path) -> dict[str, Any]:
    valid = sorted((t for t in result.trials if t.valid),
                   key=lambda t: (-t.search_j, t.trial))  # type: ignore[operator]
    frames = max((t.frames for t in valid), default=0)
    seconds = sum(t.seconds for t in valid)
    return {
        "command": " ".join(sys.argv),
        "data": str(data), "kind": args.kind, "pipeline": base.pipeline,
        "base_config": str(args.config) if args.config else None,
        "space": {"file": str(args.space), "settings": space.as_dict()},
        "split": split.as_dict(),
        "search": {"trials": settings.trials, "refine": settings.refine, "seed": settings.seed,
                   "workers": settings.workers, "run_id": result.run_id, "trials_run": len(result.trials),
                   "resumed": result.resumed, "invalid": result.invalid, "seconds_this_session": result.seconds,
                   "frames_per_trial": frames,
                   "ms_per_frame": 1000.0 * seconds / sum(t.frames for t in valid) if seconds else None},
        "base": result.base.as_dict(), "best": result.best.as_dict(),
        "top": [t.as_dict() for t in valid[:TOP]],
        "trials": [t.as_dict() for t in result.trials],
        "outputs": {name: str(out / name) for name in ("trials.jsonl", "tune.json", "tune.png", "best.yaml")}
                   | ({"write_config": str(args.write_config)} if args.write_config else {}),
    }


def _write_outputs(summary: dict[str, Any], result: TuneResult, space: SearchSpace, base: PipelineConfig, out: Path,
                   args: argparse.Namespace) -> None:
    from movseg_ros.tuning.plot import plot_search  # matplotlib only once there is something to plot

    text = json.dumps(summary, indent=1)
    for path in [out / "tune.json"] + ([args.json] if args.json else []):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    b, s = result.best, summary["split"]
    header = (f"movseg tune: trial {b.trial} of {len(result.trials)}, best search J {b.search_j:.4f} on "
              f"{len(s['search'])} search sequence(s) of {summary['data']}\n"
              f"held-aside J {b.heldout_j:.4f} on {', '.join(s['heldout'])} (base: search J "
              f"{result.base.search_j:.4f}, held-aside J {result.base.heldout_j:.4f})\n"
              f"searched: {', '.join(space.names)}\n{summary['command']}")
    for path in [out / "best.yaml"] + ([args.write_config] if args.write_config else []):
        write_config_yaml(path, base, b.settings, header)
    plot_search(result, space, out / "tune.png")


def table(summary: dict[str, Any]) -> str:
    """The top trials as columns (settings as rows), then the base and the best with their final checks."""
    top, names = summary["top"], list(summary["space"]["settings"])
    s = summary["search"]
    n_search = len(summary["split"]["search"])
    lines = [f"movseg tune: {summary['pipeline']} on {summary['data']}: {n_search} search "
             f"sequence{'s' if n_search != 1 else ''}, {len(summary['split']['heldout'])} held aside "
             f"({', '.join(summary['split']['heldout'])}); "
             f"{s['trials_run']} trials ({s['invalid']} invalid, {s['resumed']} resumed)"
             + (f", {s['ms_per_frame']:.1f} ms a frame" if s["ms_per_frame"] else "")]
    width = max([len("search J")] + [len(n) for n in names]) + 2
    heads = [f"#{t['trial']}" + (" base" if t["trial"] == 0 else "") for t in top]
    cell = max([9] + [len(h) + 2 for h in heads] + [len(_value(t["settings"][n])) + 2 for t in top for n in names])
    lines.append(f"{'top trials':<{width}}" + "".join(f"{h:>{cell}}" for h in heads))
    lines.append(f"{'search J':<{width}}" + "".join(f"{t['search_j']:>{cell}.4f}" for t in top))
    for n in names:
        lines.append(f"{n:<{width}}" + "".join(f"{_value(t['settings'][n]):>{cell}}" for t in top))
    base, best = summary["base"], summary["best"]
    lines.append(f"base: search J {base['search_j']:.4f}, held-aside J {base['heldout_j']:.4f} "
                 f"(gap {base['gap']:+.4f}); best (trial {best['trial']}): search J {best['search_j']:.4f}, "
                 f"held-aside J {best['heldout_j']:.4f} (gap {best['gap']:+.4f})")
    lines.append(f"wrote {', '.join(summary['outputs'].values())}")
    return "\n".join(lines)


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
