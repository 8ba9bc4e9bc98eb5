"""Scoring jobs (one candidate on one sequence) in this process or in worker processes.

Every process decodes a sequence the first time it scores it and keeps its frames in memory (the
DAVIS training set is about 2.6 GB decoded at 854x480), so a search decodes each sequence once a
process, not once a candidate. Workers are spawned (no fork of a process holding OpenCV threads)
and answer in any order; a job's score depends only on the job, so any worker count gives the same.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from movseg_ros.datasets import DatasetError, open_dataset
from movseg_ros.pipeline import PipelineConfig
from movseg_ros.tuning.errors import TuneError
from movseg_ros.tuning.scoring import HeldSequence, PipelineMaker, default_pipeline, run_candidate


@dataclass(frozen=True)
class DataSpec:
    """Where the sequences are, so each worker can open them itself."""

    root: Path
    kind: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Job:
    """Score `config` on `sequence`; `key` says which candidate (a trial index, or 'base'/'best' in the final check)."""

    key: int | str
    sequence: str
    config: PipelineConfig


@dataclass(frozen=True)
class JobScore:
    """A job's J and pipeline seconds, or the error the pipeline raised (`fatal`: bad data, not a bad candidate)."""

    key: int | str
    sequence: str
    j: float | None
    frames: int
    seconds: float
    error: str | None = None
    fatal: bool = False


class SequenceScorer:
    """Scores jobs in the calling process, decoding each sequence on first use."""

    def __init__(self, data: DataSpec, make_pipeline: PipelineMaker | None = None) -> None:
        self.sequences = {s.name: s for s in open_dataset(data.root, data.kind, list(data.names))}
        self.make_pipeline = make_pipeline or default_pipeline
        self.held: dict[str, HeldSequence] = {}

    def __call__(self, job: Job) -> JobScore:
        if job.sequence not in self.held:
            try:
                self.held[job.sequence] = HeldSequence.load(self.sequences[job.sequence])
            except DatasetError as e:
                return JobScore(job.key, job.sequence, None, 0, 0.0, str(e), fatal=True)
        held = self.held[job.sequence]
        try:
            j, seconds = run_candidate(held, job.config, self.make_pipeline)
        except Exception as e:  # noqa: BLE001 - a candidate the pipeline cannot run is a failed trial, not a crash
            return JobScore(job.key, job.sequence, None, len(held), 0.0, f"{type(e).__name__}: {e}")
        return JobScore(job.key, job.sequence, j, len(held), seconds)


class Evaluator:
    """Scores jobs with `workers` processes (1: in this one); use as a context manager."""

    def __init__(self, data: DataSpec, make_pipeline: PipelineMaker | None = None, workers: int = 1) -> None:
        if workers < 1:
            raise TuneError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self._scorer: SequenceScorer | None = None
        self._pool = None
        if workers == 1:
            self._scorer = SequenceScorer(data, make_pipeline)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            self._pool = multiprocessing.get_context("spawn").Pool(
                workers, initializer=_start_worker, initargs=(data, make_pipeline, threads))

    def scores(self, jobs: Iterable[Job]) -> Iterator[JobScore]:
        """Each job's score as it finishes (in job order with one process); TuneError for unreadable data."""
        results = (self._pool.imap_unordered(_score, list(jobs), chunksize=1) if self._pool is not None
                   else map(self._scorer, jobs))  # type: ignore[arg-type]
        for score in results:
            if score.fatal:
                raise TuneError(score.error)
            yield score

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_WORKER: SequenceScorer | None = None  # the worker process's own scorer (its decoded frames)


def _start_worker(data: DataSpec, make_pipeline: PipelineMaker | None, threads: int) -> None:
    global _WORKER
    cv2.setNumThreads(threads)  # W workers share the cores; results do not depend on the thread count
    try:  # a learned pipeline's network too: W workers with torch's default threads each crawl
        import torch
    except ImportError:  # the geometric pipeline needs no torch
        return
    torch.set_num_threads(threads)
    _WORKER = SequenceScorer(data, make_pipeline)


def _score(job: Job) -> JobScore:
    assert _WORKER is not None, "worker not started"
    return _WORKER(job)
