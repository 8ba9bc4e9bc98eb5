"""Seed 004 §3.3 inference: greedy clustering of a clip's embeddings into instance tubes, seeded by the heat map."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from movseg_ros.stem_seg.losses import gaussian_probability


@dataclass(frozen=True)
class ClusterConfig:
    """Clustering settings: stop when the best remaining heat value is below seed_threshold or after
    max_instances; a tube is the unassigned pixels with p > mask_threshold; tubes under min_pixels, or whose
    mean heat is below min_tube_seediness (a lone peak on a region the network does not call an object), are
    dropped."""

    seed_threshold: float = 0.5
    mask_threshold: float = 0.5
    max_instances: int = 20
    min_pixels: int = 10
    min_tube_seediness: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.seed_threshold <= 1.0:
            raise ValueError(f"ClusterConfig.seed_threshold must be in [0, 1], got {self.seed_threshold}")
        if not 0.0 <= self.min_tube_seediness <= 1.0:
            raise ValueError(f"ClusterConfig.min_tube_seediness must be in [0, 1], got {self.min_tube_seediness}")
        if not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f"ClusterConfig.mask_threshold must be in (0, 1), got {self.mask_threshold}")
        if self.max_instances < 1:
            raise ValueError(f"ClusterConfig.max_instances must be >= 1, got {self.max_instances}")
        if self.min_pixels < 1:
            raise ValueError(f"ClusterConfig.min_pixels must be >= 1, got {self.min_pixels}")


@dataclass
class Clusters:
    """ids (T, H, W) int64: 0 background, 1..K in the order found; scores[k - 1] = heat value of instance k's seed;
    probabilities[k - 1] (T, H, W): instance k's Gaussian probability, 0 on pixels another instance claimed.

    A pixel's id is the instance whose probability there is above mask_threshold, so the probabilities carry
    the tubes' edges below the output grid: upsampled smoothly, they place an edge between two cells."""

    ids: Tensor
    scores: list[float] = field(default_factory=list)
    probabilities: list[Tensor] = field(default_factory=list)


def cluster(
    embeddings: Tensor,
    variances: Tensor,
    seediness: Tensor,
    config: ClusterConfig | None = None,
    mask: Tensor | None = None,
) -> Clusters:
    """Greedy §3.3 clustering: seed at the heat-map arg-max of the unassigned pixels, take the Gaussian of the
    seed's embedding and variance, claim the unassigned pixels with p > mask_threshold, repeat.

    A rejected tube (fewer than min_pixels, or a mean heat below min_tube_seediness) is still removed, seed
    included, so the loop always shrinks the unassigned set; its pixels stay background. mask (T, H, W) bool
    limits clustering to its True pixels.
    """
    config = config or ClusterConfig()
    if embeddings.dim() != 4 or variances.shape != embeddings.shape:
        raise ValueError(
            f"cluster: embeddings and variances must both be (E, T, H, W), got "
            f"{tuple(embeddings.shape)} and {tuple(variances.shape)}"
        )
    thw = embeddings.shape[1:]
    if seediness.shape != thw:
        raise ValueError(f"cluster: seediness must be (T, H, W) = {tuple(thw)}, got {tuple(seediness.shape)}")
    if mask is not None and mask.shape != thw:
        raise ValueError(f"cluster: mask must be (T, H, W) = {tuple(thw)}, got {tuple(mask.shape)}")

    e = embeddings.shape[0]
    emb = embeddings.detach().reshape(e, -1)
    var = variances.detach().reshape(e, -1)
    heat = seediness.detach().reshape(-1)
    unassigned = torch.ones_like(heat, dtype=torch.bool) if mask is None else mask.reshape(-1).bool().clone()
    ids = torch.zeros(heat.shape, dtype=torch.int64, device=heat.device)
    scores: list[float] = []
    probabilities: list[Tensor] = []
    neg_inf = torch.tensor(float("-inf"), dtype=heat.dtype, device=heat.device)

    while len(scores) < config.max_instances and bool(unassigned.any()):
        seed = int(torch.argmax(torch.where(unassigned, heat, neg_inf)))
        score = float(heat[seed])
        if not score >= config.seed_threshold:  # also stops on NaN
            break
        p = gaussian_probability(emb, emb[:, seed], var[:, seed])
        tube = unassigned & (p > config.mask_threshold)
        n = int(tube.sum())
        if n >= config.min_pixels and (config.min_tube_seediness == 0.0
                                       or float(heat[tube].sum()) / n >= config.min_tube_seediness):
            scores.append(score)
            probabilities.append(p)
            ids[tube] = len(scores)
        unassigned &= ~tube
        unassigned[seed] = False
    own = [torch.where((ids == 0) | (ids == k), p, torch.zeros_like(p)).reshape(thw)
           for k, p in enumerate(probabilities, start=1)]
    return Clusters(ids=ids.reshape(thw), scores=scores, probabilities=own)
