"""Seed 004 §3.4 clip losses: Lovász hinge on each instance's Gaussian, variance smoothness and seediness."""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_probability(emb: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """(N,) exp(-0.5 * sum((e - mu)^2 / var)): the UNNORMALISED diagonal Gaussian of the authors' code.

    Without the normalising constant p is 1 at the mean, so the 0.5 threshold means d^2 < 2 ln 2 for any variance.
    emb is (E, N); mean and var are (E,).
    """
    if emb.dim() != 2 or mean.shape != (emb.shape[0],) or var.shape != (emb.shape[0],):
        raise ValueError(
            f"gaussian_probability: need emb (E, N), mean (E,), var (E,), got "
            f"{tuple(emb.shape)}, {tuple(mean.shape)}, {tuple(var.shape)}"
        )
    d2 = ((emb - mean[:, None]) ** 2 / var[:, None]).sum(0)
    return torch.exp(-0.5 * d2)


def probability_logits(p: Tensor) -> Tensor:
    """Margins fed to the Lovász hinge: 2p - 1 in [-1, 1], so p > 0.5 <=> margin > 0 (as the authors' code)."""
    return 2.0 * p - 1.0


def _jaccard_gradient(sorted_labels: Tensor) -> Tensor:
    """Marginal gains of the Jaccard loss as the errors, sorted descending, are added one by one."""
    gts = sorted_labels.sum()
    intersection = gts - sorted_labels.cumsum(0)
    union = gts + (1.0 - sorted_labels).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_hinge(logits: Tensor, labels: Tensor) -> Tensor:
    """Lovász hinge (Berman et al. 2018): the Lovász extension of the Jaccard loss at the hinge errors.

    errors = 1 - logit * sign (sign = +1 for label 1, -1 for label 0); with the errors sorted descending,
    loss = dot(relu(errors), marginal Jaccard-loss gains). logits (N,) are margins (0 = undecided);
    labels (N,) are in {0, 1}.
    """
    if logits.dim() != 1 or labels.shape != logits.shape:
        raise ValueError(
            f"lovasz_hinge: need logits (N,) and labels (N,), got {tuple(logits.shape)}, {tuple(labels.shape)}"
        )
    if logits.numel() == 0:
        return logits.sum() * 0.0
    labels_f = labels.to(logits.dtype)
    errors = 1.0 - logits * (2.0 * labels_f - 1.0)
    errors_sorted, order = torch.sort(errors, descending=True)
    grad = _jaccard_gradient(labels_f[order])
    return torch.dot(torch.relu(errors_sorted), grad)


def _check_clip(
    embeddings: Tensor, variances: Tensor, seediness: Tensor, instances: Tensor, ignore: Tensor | None
) -> None:
    if embeddings.dim() != 4:
        raise ValueError(f"clip_losses: embeddings must be (E, T, H, W), got {tuple(embeddings.shape)}")
    if variances.shape != embeddings.shape:
        raise ValueError(
            f"clip_losses: variances {tuple(variances.shape)} must match embeddings {tuple(embeddings.shape)}"
        )
    thw = embeddings.shape[1:]
    for name, t in (("seediness", seediness), ("instances", instances), ("ignore", ignore)):
        if t is not None and t.shape != thw:
            raise ValueError(f"clip_losses: {name} must be (T, H, W) = {tuple(thw)}, got {tuple(t.shape)}")


def clip_losses(
    embeddings: Tensor,
    variances: Tensor,
    seediness: Tensor,
    instances: Tensor,
    ignore: Tensor | None = None,
    embedding_weight: float = 1.0,
    smoothness_weight: float = 10.0,
    seediness_weight: float = 1.0,
) -> dict[str, Tensor]:
    """Seed 004 losses of one clip: {"embedding", "smoothness", "seediness", "total"}.

    embeddings/variances (E, T, H, W) (mixed embeddings, positive full variances), seediness (T, H, W) in [0, 1],
    instances (T, H, W) int ids (0 = background), ignore (T, H, W) bool pixels left out of every term.
    embedding: mean over instances of the Lovász hinge on 2p - 1, p the instance's Gaussian (mean embedding and mean
    variance over its whole tube), over all valid pixels. smoothness: mean over instances of the mean squared
    deviation of its variances (all E dims) from their mean. seediness: the squared error to p under the pixel's own
    instance (target detached, as in Neven et al.) averaged over foreground pixels, plus the squared heat averaged
    over background pixels: balanced, because objects cover a few percent of a clip and a plain mean over all
    pixels teaches a heat map that is nearly 0 everywhere (no seed ever passes the clustering threshold).
    total weights them 1, 10, 1 by default: the paper prints unit weights, the authors' code weights smoothness x10.
    """
    _check_clip(embeddings, variances, seediness, instances, ignore)
    e = embeddings.shape[0]
    emb = embeddings.reshape(e, -1)
    var = variances.reshape(e, -1)
    heat = seediness.reshape(-1)
    ids = instances.reshape(-1)
    valid = torch.ones_like(ids, dtype=torch.bool) if ignore is None else ~ignore.reshape(-1).bool()
    emb, var, heat, ids = emb[:, valid], var[:, valid], heat[valid], ids[valid]

    target = torch.zeros_like(heat)
    emb_terms, smooth_terms = [], []
    for inst in torch.unique(ids).tolist():
        if inst == 0:
            continue
        inside = ids == inst
        mean = emb[:, inside].mean(1)
        inst_var = var[:, inside]
        var_mean = inst_var.mean(1)
        p = gaussian_probability(emb, mean, var_mean)
        emb_terms.append(lovasz_hinge(probability_logits(p), inside))
        smooth_terms.append(((inst_var - var_mean[:, None]) ** 2).mean())
        target = torch.where(inside, p.detach(), target)

    zero = embeddings.sum() * 0.0 + variances.sum() * 0.0  # keeps the graph connected when the clip has no instance
    embedding = torch.stack(emb_terms).mean() if emb_terms else zero
    smoothness = torch.stack(smooth_terms).mean() if smooth_terms else zero
    squared = (heat - target) ** 2
    fg = ids > 0
    seed = seediness.sum() * 0.0
    for part in (squared[fg], squared[~fg]):
        if part.numel():
            seed = seed + part.mean()
    total = embedding_weight * embedding + smoothness_weight * smoothness + seediness_weight * seed
    return {"embedding": embedding, "smoothness": smoothness, "seediness": seed, "total": total}
