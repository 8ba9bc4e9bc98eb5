"""Seed 004 §3.2 mixing functions: the network predicts offsets, the embedding is tanh(offset) + coordinates.

Dimension order is always [x, y, (t), free...]: x runs along the image width, y along its height, t along the clip.
"""

from __future__ import annotations

import torch
from torch import Tensor

MIXINGS = ("xy", "xyt", "xyff", "xytf")
_COORDS = {"xy": ("x", "y"), "xyt": ("x", "y", "t"), "xyff": ("x", "y", "f", "f"), "xytf": ("x", "y", "t", "f")}
FREE_STD = 0.3  # std of the free dimensions, fixed (not learned) as in §3.2; the authors' code uses 0.3
T_RANGE = 0.1  # t runs over [-0.1, 0.1] across the clip (authors' code)
LOG_VAR_CLAMP = (-20.0, 20.0)  # predicted log-variances are clamped to this range so exp() stays finite and > 0


def _check(mixing: str) -> tuple[str, ...]:
    if mixing not in _COORDS:
        raise ValueError(f"mixing '{mixing}' is not one of {', '.join(MIXINGS)}")
    return _COORDS[mixing]


def embedding_dims(mixing: str) -> int:
    """Number of embedding dimensions E of a mixing function (2, 3, 4, 4)."""
    return len(_check(mixing))


def free_mask(mixing: str) -> Tensor:
    """Bool (E,): True for the free dimensions, whose meaning the network learns and whose variance is fixed."""
    return torch.tensor([c == "f" for c in _check(mixing)], dtype=torch.bool)


def predicted_dims(mixing: str) -> int:
    """Number of variance channels the network predicts: the non-free dimensions only."""
    return int((~free_mask(mixing)).sum())


def _axis(n: int, half_range: float, device: torch.device | str | None) -> Tensor:
    if n == 1:
        return torch.zeros(1, device=device)
    return torch.linspace(-half_range, half_range, n, device=device)


def coordinates(mixing: str, t: int, h: int, w: int, device: torch.device | str | None = None) -> Tensor:
    """(E, T, H, W) coordinates added by the mixing function; the free dimensions are 0.

    x and y span [-1, 1] along the shorter image side and [-r, r] along the longer one (r = long / short side),
    so one unit is the same pixel distance on both axes; t spans [-0.1, 0.1] over the clip (0 when T == 1).
    """
    names = _check(mixing)
    if min(t, h, w) < 1:
        raise ValueError(f"coordinates: clip size must be positive, got T={t}, H={h}, W={w}")
    short = min(h, w)
    xs = _axis(w, w / short, device)
    ys = _axis(h, h / short, device)
    ts = _axis(t, T_RANGE, device)
    planes = []
    for name in names:
        if name == "x":
            planes.append(xs.view(1, 1, w).expand(t, h, w))
        elif name == "y":
            planes.append(ys.view(1, h, 1).expand(t, h, w))
        elif name == "t":
            planes.append(ts.view(t, 1, 1).expand(t, h, w))
        else:
            planes.append(torch.zeros(t, h, w, device=device))
    return torch.stack(planes)


def mix(offsets: Tensor, mixing: str) -> Tensor:
    """Embeddings (E, T, H, W) = tanh(offsets) + coordinates (tanh as in the authors' code)."""
    e = embedding_dims(mixing)
    if offsets.dim() != 4 or offsets.shape[0] != e:
        raise ValueError(f"mix: offsets must be ({e}, T, H, W) for mixing '{mixing}', got {tuple(offsets.shape)}")
    _, t, h, w = offsets.shape
    return torch.tanh(offsets) + coordinates(mixing, t, h, w, offsets.device).to(offsets.dtype)


def full_variances(raw: Tensor, mixing: str, free_std: float = FREE_STD) -> Tensor:
    """Positive variances (E, T, H, W) from the network's raw variance channels.

    Convention: the network predicts LOG-variances, one channel per non-free dimension, in the order of the
    mixing's non-free dims ([x, y] or [x, y, t]); variance = exp(clamp(raw, -20, 20)). `raw` may instead have all E
    channels, in which case the free channels are ignored. The free dimensions get free_std**2 (not learned, §3.2).
    """
    # the non-free dims are the first p; python ints (no tensor-to-int), so torch.compile sees one graph
    e, p = embedding_dims(mixing), predicted_dims(mixing)
    if raw.dim() != 4 or raw.shape[0] not in (p, e):
        raise ValueError(
            f"full_variances: raw must be ({p}, T, H, W) or ({e}, T, H, W) for mixing '{mixing}', "
            f"got {tuple(raw.shape)}"
        )
    if not free_std > 0:
        raise ValueError(f"full_variances: free_std must be > 0, got {free_std}")
    learned = torch.exp(raw[:p].clamp(*LOG_VAR_CLAMP))
    fixed = torch.full((e - p, *raw.shape[1:]), free_std**2, dtype=raw.dtype, device=raw.device)
    out = torch.cat([learned, fixed], 0)
    return out
