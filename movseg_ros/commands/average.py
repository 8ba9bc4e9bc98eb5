"""movseg average: the mean of several weights files of one model (a warm start and its fine-tune).

`movseg average A B --out C` writes C with the average of A's and B's weights, refusing files of another
architecture, other settings, keys or shapes (the file is named); C's meta records the inputs' SHA-256.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from movseg_ros.model_files import ModelFileError
from movseg_ros.weight_average import average_checkpoints


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights", nargs="+", type=Path, help="two or more weights files of one model (movseg train ...)")
    p.add_argument("--out", type=Path, required=True, help="the averaged weights file to write")
    p.add_argument("--json", type=Path, help="also write the summary here")


def run(args: argparse.Namespace) -> int:
    if args.out.resolve() in [w.resolve() for w in args.weights]:
        print(f"movseg average: error: --out {args.out} is one of the inputs", file=sys.stderr)
        return 2
    command = "movseg average " + " ".join(shlex.quote(str(w)) for w in args.weights) + f" --out {shlex.quote(str(args.out))}"
    try:
        summary = average_checkpoints(args.weights, args.out, command)
    except (ModelFileError, ValueError, OSError) as e:
        print(f"movseg average: error: {e}", file=sys.stderr)
        return 2
    print(f"{summary['arch']}: mean of {len(summary['inputs'])} files ({summary['tensors']} tensors, "
          f"{summary['stored_dtype']}) -> {summary['out']}")
    for source in summary["inputs"]:
        print(f"  {source['path']}  sha256 {source['sha256'][:16]}")
    print(f"  out sha256 {summary['sha256']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0
