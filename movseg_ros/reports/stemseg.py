"""`movseg report stemseg`: seed 004's near-online pipeline next to the online ones, on the same streams.

Three parts: (1) instance J&F (DAVIS-2017 unsupervised), binary J and id switches of stem_seg, geometric
and (with --joint) two_stream on held-out synthetic clips from the STEm-Seg weights' own generator
settings, each clip run as a stream (process every frame, then finish()); (2) DAVIS binary J of the same
pipelines, as `movseg report two-stream` and `movseg eval` score it; (3) frames/s and latency on the
built-in scene at a chosen size, the near-online frame delay reported apart from the compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from movseg_ros.datasets.sequence import VideoSequence
from movseg_ros.model_files import ModelFileError
from movseg_ros.pipeline import PipelineConfig
from movseg_ros.reports.array_sequence import array_sequence
from movseg_ros.reports.common import ReportError, resolve_device
from movseg_ros.reports.davis_pipelines import PipelineScore, davis_scores, open_davis, pipeline_config
from movseg_ros.reports.heldout_streams import StreamScore, score_streams
from movseg_ros.reports.pipeline_speed import SpeedRow, pipeline_speed, scene_frames
from movseg_ros.reports.weights_files import SeedRecord, check_heldout, check_rebuilds, recorded_split
from movseg_ros.synth.config import SynthConfig


@dataclass(frozen=True)
class WeightsRecord(SeedRecord):
    """A weights file's role, path and training record (its meta)."""

    role: str  # stem_seg | two_stream
    path: Path
    meta: dict[str, Any] = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": str(self.path), "iterations": self.meta.get("iterations"),
                "date": self.meta.get("date"), "command": self.meta.get("command"), **self.seed_lists(),
                "data": {k: self.data.get(k) for k in ("preset", "synth", "size", "clip_length")}}


def read_stemseg(path: Path | str) -> WeightsRecord:
    """The STEm-Seg file's record; ModelFileError naming it when it is missing, corrupt or of another kind."""
    from movseg_ros.stem_seg.network import load_stemseg

    _, meta = load_stemseg(path)  # the whole network is built and loaded, so a bad file fails here
    return WeightsRecord("stem_seg", Path(path), meta)


def read_joint(path: Path | str) -> WeightsRecord:
    """The two-stream (joint) file's record; ModelFileError naming it when it is not one."""
    from movseg_ros.model_files import load_checkpoint
    from movseg_ros.two_stream.arch import arch_name

    return WeightsRecord("two_stream", Path(path), load_checkpoint(path, arch_name("two_stream"))["meta"])


@dataclass(frozen=True)
class ClipSplit:
    """The held-out synthetic clips: generator settings of the STEm-Seg training, clip length, seeds."""

    preset: str
    synth: dict[str, Any]
    size: tuple[int, int]  # (width, height)
    train_clip_length: int  # T of the training clips (the generator config is rebuilt with it, then lengthened)
    frames: int  # frames a clip (stream) here
    seeds: range
    source: str  # where the seeds came from

    def synth_config(self) -> SynthConfig:
        """The generator config as StemSegTrainConfig.synth_config() rebuilds it in training, `frames` long."""
        from movseg_ros.training.stemseg import StemSegTrainConfig

        config = StemSegTrainConfig(preset=self.preset, synth=dict(self.synth), size=self.size,
                                    clip_length=self.train_clip_length)
        return config.synth_config().replace(frames=self.frames)

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "synth": self.synth, "size": list(self.size), "frames": self.frames,
                "train_clip_length": self.train_clip_length, "seeds": [self.seeds.start, self.seeds.stop],
                "source": self.source}


def clip_split(weights: WeightsRecord, frames: int, seeds: range | None = None) -> ClipSplit:
    """The weights' generator settings (meta["data"]) with their held-out seeds, or `seeds` instead."""
    recorded = recorded_split(weights, seeds)
    clip_length = weights.data.get("clip_length", 8)
    if not isinstance(clip_length, int):
        raise ModelFileError(weights.path, f"meta['data']['clip_length'] is {clip_length!r}, not an integer")
    split = ClipSplit(recorded.preset, recorded.synth, recorded.size, clip_length, frames, recorded.seeds,
                      recorded.source)
    check_rebuilds(split, weights.path, f"meta['data'] with {frames} frames")
    return split


def heldout_sequences(split: ClipSplit, clips: int) -> list[VideoSequence]:
    """The first `clips` seeds of the split as sequences; truth: the objects that move at some point."""
    from movseg_ros.stem_seg.data import SynthClips

    seeds = split.seeds[:clips]
    data = SynthClips(split.synth_config(), len(seeds), base_seed=seeds.start, instances="moving")
    out = []
    for i, seed in enumerate(seeds):
        item = data[i]
        images = item["images"].mul(255.0).round_().byte().permute(0, 2, 3, 1).numpy()
        out.append(array_sequence(f"seed_{seed}", images, contiguous_ids(item["instances"].numpy())))
    return out


def contiguous_ids(ids: np.ndarray) -> np.ndarray:
    """Instance ids renumbered 1..K in id order (0 stays background): the DAVIS protocol reads truth objects
    as 1..max id, so a gap (an object that never moves) would count as an absent object."""
    values = np.unique(ids)
    values = values[values > 0]
    lookup = np.zeros(int(ids.max(initial=0)) + 1, np.int32)
    lookup[values] = np.arange(1, len(values) + 1, dtype=np.int32)
    return lookup[ids]


@dataclass(frozen=True)
class StemSegReportSettings:
    """What `movseg report stemseg` was asked for."""

    weights: Path
    joint: Path | None = None  # two-stream weights: adds the two_stream pipeline
    clips: int = 20
    frames: int = 24  # frames a held-out clip: several stem_seg clips get stitched
    heldout_seeds: range | None = None  # None: the weights' held-out split
    davis: Path | None = None  # None: skip the DAVIS part
    sequences: tuple[str, ...] = ()
    max_frames: int = 0  # DAVIS frames per sequence (0: all)
    width: int = 640  # speed part: scene size
    height: int = 480
    speed_frames: int = 30
    rate_hz: float = 30.0  # stream rate of the speed part (the frame delay's unit)
    device: str = "cpu"
    stem_seg_config: Path | None = None  # YAML whose stem_seg settings the stem_seg column runs with
    geometric_config: Path | None = None  # YAML the geometric column runs with (None: the shipped defaults)
    command: str = ""

    def check(self) -> None:
        """ReportError naming the first setting out of range."""
        resolve_device(self.device)
        for name, least in (("clips", 1), ("frames", 2), ("speed_frames", 1), ("max_frames", 0)):
            if getattr(self, name) < least:
                raise ReportError(f"--{name.replace('_', '-')} must be >= {least}, got {getattr(self, name)}")
        if not (64 <= self.width <= 4096 and 48 <= self.height <= 4096):
            raise ReportError(f"--width/--height must be at least 64x48 (at most 4096), got {self.width}x{self.height}")
        if not self.rate_hz > 0:
            raise ReportError(f"--rate must be > 0 Hz, got {self.rate_hz}")


@dataclass
class StemSegReport:
    """Everything the report found: files, split, the three parts and notes."""

    command: str
    device: str
    files: list[WeightsRecord]
    split: ClipSplit
    synth: list[StreamScore]
    speed: list[SpeedRow]
    speed_size: tuple[int, int]
    davis_root: str | None = None
    davis: list[PipelineScore] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "device": self.device, "files": {f.role: f.to_dict() for f in self.files},
                "heldout": self.split.to_dict(), "synth": [s.to_dict() for s in self.synth],
                "davis_root": self.davis_root,
                "davis": None if self.davis is None else [p.to_dict() for p in self.davis],
                "speed": {"scene": "movseg_ros.scene (built-in)", "width": self.speed_size[0],
                          "height": self.speed_size[1], "rows": [r.to_dict() for r in self.speed]},
                "notes": self.notes}


def report_configs(settings: StemSegReportSettings) -> dict[str, PipelineConfig]:
    """stem_seg with the weights (and `stem_seg_config`'s other stem_seg settings), two_stream with the joint
    weights when given (both eager), geometric."""
    stem_seg = pipeline_config("stem_seg", settings.weights, settings.device)
    if settings.stem_seg_config is not None:
        from movseg_ros.config_io import load_pipeline_config

        own = {k: v for k, v in stem_seg.to_dict()["stem_seg"].items() if k in ("weights", "accelerator", "device")}
        chosen = load_pipeline_config(settings.stem_seg_config).to_dict()["stem_seg"]
        stem_seg = PipelineConfig.from_dict({"pipeline": "stem_seg", "stem_seg": {**chosen, **own}})
    configs = {"stem_seg": stem_seg}
    if settings.joint is not None:
        configs["two_stream"] = pipeline_config("two_stream", settings.joint, settings.device)
    configs["geometric"] = pipeline_config("geometric")
    if settings.geometric_config is not None:
        from movseg_ros.config_io import load_pipeline_config

        geometric = load_pipeline_config(settings.geometric_config)
        if geometric.pipeline != "geometric":
            raise ReportError(f"--geometric-config {settings.geometric_config}: pipeline is '{geometric.pipeline}', "
                              "not geometric")
        configs["geometric"] = geometric
    return configs


def stemseg_report(settings: StemSegReportSettings) -> StemSegReport:
    """Read and check the files and the split, then score the clips, DAVIS (unless davis is None) and speed."""
    settings.check()
    files = [read_stemseg(settings.weights)]
    if settings.joint is not None:
        files.append(read_joint(settings.joint))
    split = clip_split(files[0], settings.frames, settings.heldout_seeds)
    notes = check_heldout(split, files)
    sequences = open_davis(settings.davis, settings.sequences, settings.max_frames)
    if settings.clips > len(split.seeds):
        notes.append(f"--clips {settings.clips} is more than the {len(split.seeds)} held-out seeds; all are scored")
    configs = report_configs(settings)
    synth = score_streams(heldout_sequences(split, settings.clips), configs)
    report = StemSegReport(settings.command, settings.device, files, split, synth, [],
                           (settings.width, settings.height), notes=notes)
    if sequences is not None:
        report.davis_root = str(settings.davis)
        report.davis = davis_scores(sequences, configs)
    images = scene_frames(settings.width, settings.height, settings.speed_frames)
    report.speed = pipeline_speed(configs, images, settings.rate_hz)
    return report
