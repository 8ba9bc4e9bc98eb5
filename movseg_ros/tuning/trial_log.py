"""Trials and trials.jsonl: one line per finished trial, appended as it finishes, so a search can resume."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from movseg_ros.tuning.errors import TuneError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """One candidate's settings and its search-split scores (J None when it was invalid or failed)."""

    trial: int
    phase: str  # base | random | refine
    settings: dict[str, Any]
    valid: bool
    search_j: float | None = None
    sequence_j: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0  # pipeline time summed over the search sequences
    error: str | None = None

    @property
    def ms_per_frame(self) -> float | None:
        return 1000.0 * self.seconds / self.frames if self.frames else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ms_per_frame": self.ms_per_frame}


def best_trial(trials: list[Trial]) -> Trial | None:
    """The valid trial with the highest search J; the earliest among equals."""
    valid = [t for t in trials if t.valid]
    return min(valid, key=lambda t: (-t.search_j, t.trial)) if valid else None  # type: ignore[operator]


class TrialLog:
    """Appends trials to `path`, each line tagged with the search's `run_id` (a digest of data, space, seed...)."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id

    def open(self, resume: bool) -> list[Trial]:
        """The trials already logged (resume), or none on a fresh start; TuneError when the file is another
        search's, or holds trials and `resume` is not set."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
            return []
        trials = self._read()
        if trials and not resume:
            raise TuneError(f"{self.path} exists ({len(trials)} trials of an earlier search): pass --resume to "
                            f"continue it, or choose another --out (or delete the file) to start again")
        return trials

    def append(self, trial: Trial) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"run": self.run_id} | trial.as_dict()) + "\n")

    def _read(self) -> list[Trial]:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        trials: list[Trial] = []
        for n, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                run = record.pop("run")
                record.pop("ms_per_frame", None)
                trial = Trial(**record)
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                if n == len(lines):  # a line cut short when an earlier run was stopped: that trial runs again
                    log.warning("%s: ignoring the unfinished last line %d (%s)", self.path, n, e)
                    self.path.write_text("".join(f"{ln}\n" for ln in lines[:-1]), encoding="utf-8")
                    break
                raise TuneError(f"{self.path}: line {n} is not a trial record ({e})") from None
            if run != self.run_id:
                raise TuneError(f"{self.path}: line {n} belongs to another search (different data, split, space, "
                                f"seed, base config or pipeline hook): resume with the same settings, or choose "
                                f"another --out")
            trials.append(trial)
        return trials
