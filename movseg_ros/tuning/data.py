"""Where a search's data is by default, and the guard that keeps the dev set out of every search."""

from __future__ import annotations

import os
from pathlib import Path

from movseg_ros.datasets.davis import default_root
from movseg_ros.tuning.errors import TuneError

TRAIN_ENV = "MOVSEG_DAVIS_TRAIN"
# The DAVIS-2016 train sequences that every learned stage (saliency, motion, appearance, joint, refine) and the
# README's `movseg tune` runs hold aside: never trained or searched on, they give the held-out scores.
HELD_ASIDE = ("bmx-bumps", "drift-turn", "hockey", "horsejump-low", "soccerball", "swing")


def default_train_root() -> Path:
    """The DAVIS 2016 training set: $MOVSEG_DAVIS_TRAIN, else ../shared/data/davis2016-train beside the
    checkout or the working folder (found the way `default_root` finds the dev set)."""
    if os.environ.get(TRAIN_ENV):
        return Path(os.environ[TRAIN_ENV])
    candidates = [Path(__file__).resolve().parents[3], Path.cwd().parent, Path.cwd()]
    for base in candidates:
        if (base / "shared" / "data" / "davis2016-train").is_dir():
            return base / "shared" / "data" / "davis2016-train"
    return candidates[0] / "shared" / "data" / "davis2016-train"


def check_not_dev_set(data: Path) -> None:
    """TuneError when `data` is the DAVIS dev set or a sequence inside it."""
    dev, here = default_root().resolve(), Path(data).resolve()
    if here == dev or dev in here.parents:
        raise TuneError(f"{data} is the DAVIS dev set ({dev}): the dev set is for reporting, never for searching; "
                        f"search on the training set (default {default_train_root()}) and report the chosen "
                        f"settings on the dev set with `movseg eval --config best.yaml`")
