"""Training data for the refinement: the geometric pipeline run online over DAVIS-layout sequences, each
frame's maps (stacked as the network sees them) with its mask at the work size, cached per sequence."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.datasets.davis import read_sequence
from movseg_ros.datasets.errors import DatasetError
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.refine.features import stack_features
from movseg_ros.sources import stamp_ns

VOID = 255  # truth value of pixels left out of the loss and the score


@dataclass(frozen=True)
class RefineItem:
    """One frame: the network's input (C x h x w float16), the fused map and the truth (H x W at the work size)."""

    sequence: str
    index: int
    features: np.ndarray
    fused: np.ndarray  # float16 in [0, 1]
    truth: np.ndarray  # uint8: 1 object, 0 background, VOID left out


def recording_config(config: PipelineConfig) -> PipelineConfig:
    """`config` as the recorder runs it: geometric, without the refinement (its input is what is recorded)."""
    d = config.to_dict()
    d["pipeline"] = "geometric"
    d.setdefault("geometric", {})["refine"] = "none"
    return PipelineConfig.from_dict(d)


def record_sequence(folder: Path, config: PipelineConfig, scale: float) -> list[RefineItem]:
    """Every annotated frame after the first of the DAVIS sequence in `folder`, run online through `config`."""
    seq = read_sequence(folder)
    if seq.truth is None:
        raise DatasetError(folder, "no annotations: the refinement trains on masks")
    annotated = set(seq.annotated)
    cv2.setRNGSeed(0)  # as a fresh `movseg eval`
    pipeline = Pipeline(recording_config(config))
    items = []
    for i in range(len(seq)):
        pipeline.process(seq.frame(i, stamp_ns(i, seq.fps)))
        maps = pipeline.segmenter.last_maps
        if maps is None or i not in annotated:
            continue
        h, w = maps.shape
        truth = cv2.resize(seq.binary(i).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.5
        label = truth.astype(np.uint8)
        void = seq.ignore(i)
        if void is not None:
            label[cv2.resize(void.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.5] = VOID
        items.append(RefineItem(seq.name, i, stack_features(maps, scale).astype(np.float16),
                                maps.fused.astype(np.float16), label))
    return items


def fingerprint(config: PipelineConfig, scale: float) -> str:
    """Names the cache of recordings made with these settings (and the saliency file's contents: two files
    written in the same second, as out-of-fold ones may be, must not share a cache)."""
    from movseg_ros.paths import weights_file
    from movseg_ros.saliency.predictor import SHIPPED

    recording = recording_config(config)
    geo = recording.geometric
    record: dict[str, Any] = {"geometric": recording.to_dict()["geometric"], "scale": scale}
    if geo.appearance == "saliency":
        record["saliency_file"] = hashlib.sha1(weights_file(geo.saliency_weights, SHIPPED).read_bytes()).hexdigest()
    return hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]


def recorded(root: Path, names: Sequence[str], config: PipelineConfig, scale: float, cache_dir: Path | None,
             progress=None) -> list[RefineItem]:
    """The recordings of sequences `names` under `root`, read from `cache_dir` when made before, else made
    (and saved there). `progress(name)` is called before each sequence."""
    items: list[RefineItem] = []
    cache = Path(cache_dir) / fingerprint(config, scale) if cache_dir else None
    for name in names:
        if progress is not None:
            progress(name)
        path = cache / f"{name}.npz" if cache else None
        if path is not None and path.is_file():
            items += _load(path, name)
            continue
        made = record_sequence(Path(root) / name, config, scale)
        if path is not None:
            _save(path, made)
        items += made
    return items


def _save(path: Path, items: list[RefineItem]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, index=np.array([i.index for i in items]), features=np.stack([i.features for i in items]),
             fused=np.stack([i.fused for i in items]), truth=np.stack([i.truth for i in items]))
    tmp.replace(path)


def _load(path: Path, name: str) -> list[RefineItem]:
    try:
        with np.load(path) as data:
            return [RefineItem(name, int(i), f, u, t) for i, f, u, t in
                    zip(data["index"], data["features"], data["fused"], data["truth"])]
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(path, f"unreadable refinement cache ({e}); delete it to record again") from None


class RefineFrames(Dataset):
    """Items as tensors (features, fused, truth, weight), mirrored left-right at random when `augment`."""

    def __init__(self, items: list[RefineItem], length: int | None = None, augment: bool = True, seed: int = 0) -> None:
        if not items:
            raise DatasetError(Path("."), "no refinement frames to train on")
        self.items, self.length, self.augment, self.seed = items, length or len(items), augment, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.items[i % len(self.items)]
        features, fused, truth = item.features, item.fused, item.truth
        if self.augment and np.random.default_rng((self.seed, i)).random() < 0.5:
            features, fused, truth = features[..., ::-1], fused[..., ::-1], truth[..., ::-1]
        label = torch.from_numpy(np.ascontiguousarray(truth))[None]
        return {"features": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
                "fused": torch.from_numpy(np.ascontiguousarray(fused, dtype=np.float32))[None],
                "truth": (label == 1).float(), "weight": (label != VOID).float()}


def collate_refine(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}
