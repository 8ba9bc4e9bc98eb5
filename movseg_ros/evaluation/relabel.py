"""Track ids to the ids the DAVIS instance task takes: 1..K, K at most 20, by first appearance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DAVIS_UNSUPERVISED_MAX = 20  # the DAVIS 2017 unsupervised evaluation refuses more predicted objects


def largest_tracks(frames: Sequence[np.ndarray], count: int) -> set[int]:
    """The `count` track ids (non-zero labels) with the largest total area over the frames."""
    area: dict[int, int] = {}
    for labels in frames:
        values, counts = np.unique(labels, return_counts=True)
        for v, c in zip(values, counts):
            if v != 0:
                area[int(v)] = area.get(int(v), 0) + int(c)
    return set(sorted(area, key=lambda v: (-area[v], v))[:count])


def relabel_tracks(frames: Sequence[np.ndarray], max_objects: int | None = DAVIS_UNSUPERVISED_MAX) -> list[np.ndarray]:
    """Label maps with ids 1..K in order of first appearance; beyond `max_objects`, the smallest tracks are dropped."""
    keep = largest_tracks(frames, max_objects) if max_objects is not None else None
    ids: dict[int, int] = {}
    out = []
    for labels in frames:
        values, first = np.unique(labels.ravel(), return_index=True)
        for v in values[np.argsort(first, kind="stable")]:
            v = int(v)
            if v != 0 and v not in ids and (keep is None or v in keep):
                ids[v] = len(ids) + 1
        lookup = np.zeros(int(labels.max(initial=0)) + 1, np.int32)
        for track, new in ids.items():
            if track < lookup.size:
                lookup[track] = new
        out.append(lookup[labels])
    return out
