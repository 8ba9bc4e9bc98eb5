"""One candidate on one sequence: the pipeline run online over frames held in memory, scored by DAVIS J.

J is the DAVIS binary region similarity of `movseg eval` (union of the predicted tracks against the
union of the objects, every annotated frame, void pixels left out, empty on empty scores 1),
computed alone: a search needs no F or instance matching.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.evaluation.davis_metrics import jaccard, statistics
from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.sources import stamp_ns

PipelineMaker = Callable[[PipelineConfig, str], Pipeline]
"""(config, sequence name) -> a fresh pipeline; the hook for e.g. cached per-frame appearance maps."""


def default_pipeline(config: PipelineConfig, sequence: str) -> Pipeline:
    """The pipeline `movseg eval` runs."""
    return Pipeline(config)


@dataclass(frozen=True)
class HeldSequence:
    """A sequence decoded once: its frames (read-only RGB) and the binary truth and void of its annotated frames."""

    name: str
    fps: float
    images: tuple[np.ndarray, ...]
    annotated: tuple[int, ...]
    truth: tuple[np.ndarray, ...]  # HxW bool per annotated frame: any object
    void: tuple[np.ndarray | None, ...]

    @classmethod
    def load(cls, seq: VideoSequence) -> "HeldSequence":
        images = tuple(seq.image(i) for i in range(len(seq)))
        for image in images:
            image.flags.writeable = False  # the pipeline gets copies (below); nothing may change the held frames
        annotated = tuple(seq.annotated)
        return cls(seq.name, seq.fps, images, annotated, tuple(seq.binary(i) for i in annotated),
                   tuple(seq.ignore(i) for i in annotated))

    def __len__(self) -> int:
        return len(self.images)

    def frames(self) -> Iterator[Frame]:
        """The pipeline's inputs, stamped as `movseg eval` stamps them; each image a fresh writable copy, as a
        decoded frame would be (a copy costs ~0.1 ms at 854x480, against ~40 ms in the pipeline)."""
        return (Frame(image.copy(), stamp_ns(i, self.fps), self.name, i) for i, image in enumerate(self.images))


def sequence_j(held: HeldSequence, label_maps: Sequence[np.ndarray]) -> float:
    """J-Mean of one sequence, as `movseg eval` reports it per sequence."""
    if len(label_maps) != len(held):
        raise RuntimeError(f"{held.name}: {len(held)} frames but {len(label_maps)} predictions")
    per_frame = [jaccard(label_maps[i] > 0, truth, void)
                 for i, truth, void in zip(held.annotated, held.truth, held.void)]
    return statistics(np.asarray(per_frame)).mean


def run_candidate(held: HeldSequence, config: PipelineConfig, make_pipeline: PipelineMaker = default_pipeline
                  ) -> tuple[float, float]:
    """(J, seconds in the pipeline) of `config` on one sequence: every frame processed online, then finish().

    OpenCV's global random generator (k-means in the motion split draws from it) is reset first, so a
    sequence scores the same whatever ran before it in the process, as in a fresh `movseg eval`.
    """
    cv2.setRNGSeed(0)
    pipeline = make_pipeline(config, held.name)
    start = time.perf_counter()
    outputs = [o for f in held.frames() for o in pipeline.process(f)] + pipeline.finish()
    seconds = time.perf_counter() - start
    return sequence_j(held, [o.label_map for o in outputs]), seconds
