"""Middlebury .flo optical-flow files: 'PIEH' (float 202021.25), int32 width, int32 height, then
float32 (u, v) per pixel, row by row, little-endian."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FLO_MAGIC = 202021.25
MAX_SIDE = 100_000


class FlowFileError(ValueError):
    """A .flo file that is missing, truncated or not a flow file; the message names the file."""


def write_flo(path: str | Path, flow: np.ndarray) -> Path:
    """Save an HxWx2 flow (pixels, x then y) as a .flo file."""
    path = Path(path)
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise FlowFileError(f"{path}: flow must be HxWx2, got shape {flow.shape}")
    h, w = flow.shape[:2]
    with path.open("wb") as f:
        f.write(np.array([FLO_MAGIC], "<f4").tobytes())
        f.write(np.array([w, h], "<i4").tobytes())
        f.write(np.ascontiguousarray(flow, "<f4").tobytes())
    return path


def read_flo(path: str | Path) -> np.ndarray:
    """An HxWx2 float32 flow from a .flo file; errors name the file and the problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FlowFileError(f"{path}: cannot read ({e.strerror})") from e
    if len(data) < 12:
        raise FlowFileError(f"{path}: {len(data)} bytes, too short for a .flo header")
    magic = float(np.frombuffer(data[:4], "<f4")[0])
    if magic != FLO_MAGIC:
        raise FlowFileError(f"{path}: not a .flo file (magic {data[:4]!r}, expected b'PIEH')")
    w, h = (int(v) for v in np.frombuffer(data[4:12], "<i4"))
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise FlowFileError(f"{path}: bad size {w}x{h} in the header")
    expected = 12 + 8 * w * h
    if len(data) != expected:
        raise FlowFileError(f"{path}: {len(data)} bytes but a {w}x{h} flow needs {expected} (truncated or padded)")
    return np.frombuffer(data[12:], "<f4").reshape(h, w, 2).astype(np.float32)
