"""A `make_pipeline` hook for searches with `geometric.appearance: saliency`: the network's map of a frame
depends on the frame and the network alone, so each worker process computes it once and every candidate
reuses it. Candidates then cost what the motion part costs."""

from __future__ import annotations

import hashlib

import numpy as np

from movseg_ros.pipeline import Pipeline, PipelineConfig


class _CachedModel:
    """The saliency network, answering from the cache for a frame it has seen (keyed by the frame's bytes)."""

    def __init__(self, model, cache: dict[bytes, np.ndarray]) -> None:
        self.model, self.cache = model, cache

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        key = hashlib.blake2b(rgb.tobytes(), digest_size=16).digest()
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self.model(rgb).astype(np.float16)
        return hit.astype(np.float32)


class CachedSaliencyPipelines:
    """(config, sequence) -> Pipeline(config), its saliency network answering from this process's cache."""

    def __init__(self) -> None:
        self._caches: dict[tuple[str, int], dict[bytes, np.ndarray]] = {}

    def __call__(self, config: PipelineConfig, sequence: str) -> Pipeline:
        pipeline = Pipeline(config)
        schedule = getattr(pipeline.segmenter, "saliency", None)
        if schedule is not None:
            g = config.geometric
            cache = self._caches.setdefault((g.saliency_weights, g.saliency_width), {})
            schedule.model = _CachedModel(schedule.model, cache)
        return pipeline
