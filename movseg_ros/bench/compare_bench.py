"""`movseg bench compare`: a benchmark of this checkout against the code of a git ref, on this machine, in one run.

Speed figures move with the machine (a shared VM can run 2x slower from one day to the next), so a
target set on one day is checked as a ratio: both versions run here, alternating (ref, new, new, ref,
...), and the ratio of their medians is carried over to the figure recorded for the ref.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median

from tqdm import tqdm

# target -> (the JSON figure it is judged by, its name, True when higher is better)
FIGURES = {"pipeline": (("fps",), "frames/s", True), "node": (("latency_ms", "p50"), "latency p50 ms", False)}
RUN_TIMEOUT_S = 900


class CompareError(RuntimeError):
    """A comparison that cannot run: not a git checkout, an unknown ref, a side that failed."""


@dataclass
class Comparison:
    """Every round's figure for the ref and for this checkout, and what they give."""

    target: str
    ref: str
    commit: str
    figure: str
    ref_args: list[str]
    new_args: list[str]
    ref_values: list[float] = field(default_factory=list)
    new_values: list[float] = field(default_factory=list)
    recorded: float | None = None  # the ref's figure as recorded where the target was set

    @property
    def ratio(self) -> float:
        """This checkout's median over the ref's (both measured here, in this run)."""
        return median(self.new_values) / median(self.ref_values)

    @property
    def carried(self) -> float | None:
        """The recorded figure times the ratio: what this checkout would give where the ref gave `recorded`."""
        return None if self.recorded is None else self.recorded * self.ratio


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ref", required=True, help="git ref (commit, tag, branch) of the code to compare against")
    p.add_argument("--target", choices=sorted(FIGURES), default="pipeline",
                   help="pipeline: `movseg bench pipeline` frames/s; node: `movseg bench node` latency p50")
    p.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating (default 2)")
    p.add_argument("--args", default="", help="arguments for both sides' bench, e.g. \"--duration 15\"")
    p.add_argument("--ref-args", default="", help="further arguments for the ref's bench only")
    p.add_argument("--new-args", default="", help="further arguments for this checkout's bench only, e.g. \"--depth\"")
    p.add_argument("--recorded", type=float, default=None,
                   help="the ref's figure where the target was set (e.g. its README's); printed times the ratio")
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of every round's figure, ref and new, here")


def run(args: argparse.Namespace) -> int:
    try:
        if args.rounds < 1:
            raise CompareError(f"--rounds must be >= 1, got {args.rounds}")
        result = compare(args)
    except CompareError as e:
        print(f"movseg bench compare: {e}", file=sys.stderr)
        return 2
    print(report(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**asdict(result), "ratio": result.ratio, "carried": result.carried}, indent=2))
    if args.plot is not None:
        plot(result, args.plot)
    return 0


def compare(args: argparse.Namespace) -> Comparison:
    """Both sides `args.rounds` times each, in the order ref, new, new, ref, ... (drift cancels)."""
    root = checkout_root()
    commit = resolve_ref(root, args.ref)
    shared, ref_extra, new_extra = (shlex.split(a) for a in (args.args, args.ref_args, args.new_args))
    result = Comparison(args.target, args.ref, commit, FIGURES[args.target][1], shared + ref_extra, shared + new_extra,
                        recorded=args.recorded)
    with tempfile.TemporaryDirectory(prefix="movseg_compare_") as tmp:
        ref_tree = export_tree(root, commit, Path(tmp) / "ref")
        if args.target == "node" and "--params-file" not in result.ref_args and (ref_tree / "config/segment.yaml").is_file():
            result.ref_args += ["--params-file", str(ref_tree / "config/segment.yaml")]  # the ref's own defaults
        order = [side for i in range(args.rounds) for side in (("ref", "new") if i % 2 == 0 else ("new", "ref"))]
        for k, side in enumerate(tqdm(order, desc="bench compare", unit="run", file=sys.stderr, disable=None)):
            tree, extra = (ref_tree, result.ref_args) if side == "ref" else (root, result.new_args)
            value = run_side(tree, args.target, extra, Path(tmp) / f"{k}.json")
            (result.ref_values if side == "ref" else result.new_values).append(value)
    return result


def checkout_root() -> Path:
    """The git checkout this package runs from."""
    here = Path(__file__).resolve().parent.parent.parent
    out = _git(here, "rev-parse", "--show-toplevel")
    if out is None:
        raise CompareError(f"{here} is not a git checkout: compare needs the repository (git clone), not an install")
    return Path(out)


def resolve_ref(root: Path, ref: str) -> str:
    """The commit `ref` names, or a CompareError naming it."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit is None:
        raise CompareError(f"--ref '{ref}': no such commit in {root}")
    return commit


def export_tree(root: Path, commit: str, dest: Path) -> Path:
    """The files of `commit` (tracked only, as committed) under `dest`."""
    dest.mkdir(parents=True)
    archive = dest.parent / "ref.tar"
    with open(archive, "wb") as out:
        done = subprocess.run(["git", "archive", "--format=tar", commit], cwd=root, stdout=out,
                              stderr=subprocess.PIPE, text=False)
    if done.returncode != 0:
        raise CompareError(f"git archive {commit}: {done.stderr.decode(errors='replace').strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    return dest


def run_side(tree: Path, target: str, extra: list[str], json_path: Path) -> float:
    """One `movseg bench TARGET` of the code in `tree` (its package first on the path, for it and the node it
    starts), and the figure its JSON gives."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "movseg_ros.cli", "bench", target, *extra, "--json", str(json_path)]
    try:
        done = subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CompareError(f"{' '.join(cmd[2:5])} in {tree} ran past {RUN_TIMEOUT_S} s") from None
    if done.returncode != 0 or not json_path.is_file():
        tail = "\n".join(done.stdout.strip().splitlines()[-5:])
        raise CompareError(f"{' '.join(cmd[2:])} in {tree} failed (exit {done.returncode}):\n{tail}")
    return figure_of(json.loads(json_path.read_text()), target, json_path)


def figure_of(data: dict, target: str, source: Path) -> float:
    """The target's figure from a bench JSON, or a CompareError naming the file and the missing key."""
    keys = FIGURES[target][0]
    value = data
    for key in keys:
        if not isinstance(value, dict) or value.get(key) is None:
            raise CompareError(f"{source}: no '{'.'.join(keys)}' in the bench's JSON (did it produce any output?)")
        value = value[key]
    return float(value)


def report(r: Comparison) -> str:
    higher_better = FIGURES[r.target][2]
    verdict = "faster" if (r.ratio > 1) == higher_better else "slower"
    lines = [f"movseg bench compare: {r.target} ({r.figure}), this checkout against {r.ref} ({r.commit[:10]}), "
             f"{len(r.ref_values)} rounds each, alternating",
             f"  ref   {' '.join(shlex.quote(a) for a in r.ref_args) or '(no arguments)'}",
             f"  new   {' '.join(shlex.quote(a) for a in r.new_args) or '(no arguments)'}",
             f"  ref   {', '.join(f'{v:.1f}' for v in r.ref_values)}   median {median(r.ref_values):.1f}",
             f"  new   {', '.join(f'{v:.1f}' for v in r.new_values)}   median {median(r.new_values):.1f}",
             f"  ratio new/ref {r.ratio:.3f} ({verdict})"]
    if r.carried is not None:
        lines.append(f"  recorded for the ref {r.recorded:g} -> this checkout there {r.carried:.1f} {r.figure}")
    return "\n".join(lines)


def plot(r: Comparison, path: Path) -> Path:
    """Each round's figure for the ref and for this checkout, in run order, with their medians."""
    from movseg_ros.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (name, values, colour) in enumerate((("ref", r.ref_values, "tab:grey"), ("new", r.new_values, "tab:blue"))):
        ax.plot([k] * len(values), values, "o", color=colour, alpha=0.7)
        ax.hlines(median(values), k - 0.2, k + 0.2, color=colour, label=f"{name} median {median(values):.1f}")
    ax.set_xticks([0, 1], [f"{r.ref} ({r.commit[:8]})", "this checkout"])
    ax.set_xlim(-0.6, 1.6)
    ax.set(ylabel=r.figure, title=f"{r.target}: ratio new/ref {r.ratio:.3f}")
    ax.legend()
    return save_figure(fig, path)


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None
