"""The search: the base config, seeded random candidates, optional refinement around the best so far,
each scored by mean J over the search split; then the best and the base on the held-aside split.

Trial i's settings depend only on the seed and i (and, for refinement, on the trials before it),
never on the worker count or on how many sessions the search took, so a resumed or parallel search
tries exactly what a single uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from movseg_ros.pipeline import PipelineConfig
from movseg_ros.tuning.errors import TuneError
from movseg_ros.tuning.scoring import PipelineMaker
from movseg_ros.tuning.space import SearchSpace, apply_settings, flat_settings
from movseg_ros.tuning.split import Split
from movseg_ros.tuning.trial_log import Trial, TrialLog, best_trial
from movseg_ros.tuning.workers import DataSpec, Evaluator, Job, JobScore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSettings:
    """How many candidates, drawn how, scored by how many processes."""

    trials: int = 20  # random candidates after the base (trial 0)
    refine: int = 0  # then candidates perturbed around the best so far, one at a time
    seed: int = 0
    workers: int = 1
    refine_scale: float = 0.1  # refinement step: this fraction of each range (and chance of another choice)

    def __post_init__(self) -> None:
        for name, value in (("--trials", self.trials), ("--refine", self.refine), ("--seed", self.seed)):
            if value < 0:
                raise TuneError(f"{name} must be >= 0, got {value}")
        if self.workers < 1:
            raise TuneError(f"--workers must be >= 1, got {self.workers}")
        if not 0.0 < self.refine_scale <= 1.0:
            raise TuneError(f"refine_scale must be in (0, 1], got {self.refine_scale}")

    @property
    def total(self) -> int:
        return 1 + self.trials + self.refine


@dataclass(frozen=True)
class Check:
    """One config's search J and its held-aside J (the final check)."""

    trial: int
    settings: dict[str, Any]
    search_j: float
    heldout_j: float
    heldout_sequence_j: dict[str, float]

    @property
    def gap(self) -> float:
        """Search J minus held-aside J: how much of the search's gain was fitting the search split."""
        return self.search_j - self.heldout_j

    def as_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "settings": self.settings, "search_j": self.search_j,
                "heldout_j": self.heldout_j, "gap": self.gap, "heldout_sequence_j": self.heldout_sequence_j}


@dataclass(frozen=True)
class TuneResult:
    """Every trial in order, the base and the best with their final checks, and the run's identity and time."""

    trials: list[Trial]
    base: Check
    best: Check
    run_id: str
    resumed: int  # trials taken from an earlier session's log
    seconds: float  # wall time of this session

    @property
    def invalid(self) -> int:
        return sum(not t.valid for t in self.trials)


def tune(data: DataSpec, split: Split, space: SearchSpace, base: PipelineConfig, settings: SearchSettings,
         log_path: Path | None = None, resume: bool = False, make_pipeline: PipelineMaker | None = None,
         progress: bool = True) -> TuneResult:
    """Search `space` over `base` on `split.search`, then score the base and the best on `split.heldout`.

    Trials go to `log_path` (trials.jsonl) as they finish; with `resume`, trials already there are kept.
    `make_pipeline(config, sequence)` builds each run's pipeline (default `Pipeline(config)`); with
    workers > 1 it must be picklable (a module-level function or a functools.partial of one).
    """
    start = time.perf_counter()
    ident = run_id(data, split, space, base, settings, make_pipeline)
    trial_log = TrialLog(log_path, ident) if log_path is not None else None
    done = {t.trial: t for t in (trial_log.open(resume) if trial_log else [])}
    _check_logged(done, space, base, settings)
    resumed = len(done)
    base_settings = space.values_in(base)
    bar = tqdm(total=settings.total, initial=resumed, desc="tune", unit="trial", file=sys.stderr,
               disable=None if progress else True)

    def record(trial: Trial) -> None:
        if trial.trial == 0 and not trial.valid:
            raise TuneError(f"the base config fails: {trial.error}")
        if not trial.valid:
            log.info("trial %d skipped (invalid): %s", trial.trial, trial.error)
        if trial_log:
            trial_log.append(trial)
        done[trial.trial] = trial
        best = best_trial(list(done.values()))
        bar.set_postfix_str(f"best J {best.search_j:.3f} (trial {best.trial})" if best else "")
        bar.update(1)

    with bar, Evaluator(data, make_pipeline, settings.workers) as evaluator:
        fixed = [i for i in range(1 + settings.trials) if i not in done]
        _run_trials(evaluator, [(i, *_fixed_candidate(space, base_settings, settings.seed, i)) for i in fixed],
                    base, split, record)
        for i in range(1 + settings.trials, settings.total):
            if i not in done:
                best = best_trial([t for t in done.values() if t.trial < i])
                assert best is not None  # the base is always valid
                candidate = space.perturb(best.settings, np.random.default_rng([settings.seed, i]),
                                          settings.refine_scale)
                _run_trials(evaluator, [(i, "refine", candidate)], base, split, record)
        bar.close()
        trials = [done[i] for i in sorted(done)]
        best = best_trial(trials)
        assert best is not None
        base_check, best_check = _final_check(evaluator, base, done[0], best, split)
    return TuneResult(trials, base_check, best_check, ident, resumed, time.perf_counter() - start)


def run_id(data: DataSpec, split: Split, space: SearchSpace, base: PipelineConfig, settings: SearchSettings,
           make_pipeline: PipelineMaker | None = None) -> str:
    """A digest of everything that decides what the trials are and score; a log is resumed only under the same."""
    maker = "Pipeline"
    if make_pipeline is not None:  # a function's name, or a callable object's class
        named = make_pipeline if hasattr(make_pipeline, "__qualname__") else type(make_pipeline)
        maker = f"{named.__module__}.{named.__qualname__}"
    blob = json.dumps({"data": str(Path(data.root).resolve()), "kind": data.kind, "split": split.as_dict(),
                       "space": space.as_dict(), "seed": settings.seed, "refine_scale": settings.refine_scale,
                       "base": flat_settings(base), "make_pipeline": maker}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _fixed_candidate(space: SearchSpace, base_settings: dict[str, Any], seed: int, index: int
                     ) -> tuple[str, dict[str, Any]]:
    """Trial 0 is the base; trial i > 0 is drawn from the space with the generator of (seed, i)."""
    if index == 0:
        return "base", dict(base_settings)
    return "random", space.sample(np.random.default_rng([seed, index]))


def _run_trials(evaluator: Evaluator, candidates: list[tuple[int, str, dict[str, Any]]], base: PipelineConfig,
                split: Split, record: Callable[[Trial], None]) -> None:
    """Score the candidates on the search split (all their jobs queued at once); record each trial as it completes."""
    jobs, known = [], {}
    for index, phase, settings in candidates:
        try:
            config = apply_settings(base, settings)
        except ValueError as e:
            record(Trial(index, phase, settings, False, error=str(e)))
            continue
        known[index] = (phase, settings)
        jobs += [Job(index, name, config) for name in split.search]
    scores: dict[int, list[JobScore]] = defaultdict(list)
    for score in evaluator.scores(jobs):
        key = int(score.key)
        scores[key].append(score)
        if len(scores[key]) == len(split.search):
            record(_trial(key, *known[key], scores.pop(key), split.search))


def _trial(index: int, phase: str, settings: dict[str, Any], scores: list[JobScore], names: tuple[str, ...]) -> Trial:
    """A scored trial: mean J over the search sequences (taken in name order), or the first failure."""
    by_name = {s.sequence: s for s in scores}
    failed = [by_name[n] for n in names if by_name[n].error]
    frames, seconds = sum(s.frames for s in scores), sum(s.seconds for s in scores)
    if failed:
        return Trial(index, phase, settings, False, frames=frames, seconds=seconds,
                     error=f"{failed[0].sequence}: {failed[0].error}")
    sequence_j = {n: float(by_name[n].j) for n in names}  # type: ignore[arg-type]
    return Trial(index, phase, settings, True, float(np.mean(list(sequence_j.values()))), sequence_j, frames, seconds)


def _final_check(evaluator: Evaluator, base: PipelineConfig, base_trial: Trial, best: Trial, split: Split
                 ) -> tuple[Check, Check]:
    """The base and the best on the held-aside sequences (the best run only when it is not the base)."""
    log.info("final check: base%s on %d held-aside sequence(s)", "" if best.trial == 0 else f" and trial {best.trial}",
             len(split.heldout))
    configs = {"base": base} | ({} if best.trial == 0 else {"best": apply_settings(base, best.settings)})
    jobs = [Job(key, name, config) for key, config in configs.items() for name in split.heldout]
    results: dict[str, dict[str, float]] = defaultdict(dict)
    for score in evaluator.scores(jobs):
        if score.error:
            raise TuneError(f"final check: the {score.key} config fails on {score.sequence}: {score.error}")
        results[str(score.key)][score.sequence] = float(score.j)  # type: ignore[arg-type]
    results.setdefault("best", results["base"])

    def check(trial: Trial, key: str) -> Check:
        per_seq = {n: results[key][n] for n in split.heldout}
        return Check(trial.trial, trial.settings, float(trial.search_j), float(np.mean(list(per_seq.values()))),
                     per_seq)

    return check(base_trial, "base"), check(best, "best")


def _check_logged(done: dict[int, Trial], space: SearchSpace, base: PipelineConfig, settings: SearchSettings) -> None:
    """Trials resumed from a log must be the ones this search would run at those indices."""
    base_settings = space.values_in(base)
    for i, trial in sorted(done.items()):
        if i >= settings.total:
            raise TuneError(f"the trial log already holds trial {i}; ask for at least as many trials "
                            f"(--trials and --refine) to resume it")
        if i <= settings.trials:
            phase, expected = _fixed_candidate(space, base_settings, settings.seed, i)
            if trial.phase != phase or trial.settings != expected:
                raise TuneError(f"the trial log's trial {i} ({trial.phase}) is not what this search draws there: "
                                f"resume with the same --trials and --refine")
        elif trial.phase != "refine":
            raise TuneError(f"the trial log's trial {i} is a {trial.phase} trial but this search refines from trial "
                            f"{settings.trials + 1}: resume with the same --trials")
