"""Indexed (palette) PNGs as DAVIS 2017 stores instance annotations: 8-bit ids plus a colour table.

OpenCV writes no palette PNGs, so the writer builds the file (IHDR, PLTE, IDAT, IEND). The reader
takes the palette from the file, lets OpenCV decode the pixels to colours, and maps colours back to
ids (the DAVIS palette gives every id its own colour).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class AnnotationFileError(ValueError):
    """An annotation PNG that cannot be read as an indexed image; the message names the file."""


def davis_palette() -> np.ndarray:
    """(256, 3) uint8: the DAVIS / PASCAL VOC colour of each id (bits of the id spread over R, G, B)."""
    palette = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def write_palette_png(path: str | Path, ids: np.ndarray, palette: np.ndarray | None = None) -> Path:
    """Save an HxW map of ids 0..255 as an 8-bit indexed PNG with the given (default DAVIS) palette."""
    path = Path(path)
    if ids.ndim != 2:
        raise ValueError(f"{path}: an id map must be HxW, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise ValueError(f"{path}: ids must be in 0..255 for an 8-bit palette PNG, got {ids.min()}..{ids.max()}")
    table = davis_palette() if palette is None else np.asarray(palette, np.uint8)
    if table.shape != (256, 3):
        raise ValueError(f"{path}: palette must be 256x3, got {table.shape}")
    h, w = ids.shape
    rows = np.zeros((h, w + 1), np.uint8)  # filter byte 0 (None) in front of every row
    rows[:, 1:] = ids
    header = struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)
    data = PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"PLTE", table.tobytes())
    data += _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def read_palette_png(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(HxW uint8 ids, palette) of an indexed PNG; a clear error for anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AnnotationFileError(f"{path}: cannot read ({e.strerror})") from e
    if not data.startswith(PNG_SIGNATURE):
        raise AnnotationFileError(f"{path}: not a PNG file")
    chunks = _chunks(path, data)
    if b"IHDR" not in chunks or len(chunks[b"IHDR"]) != 13:
        raise AnnotationFileError(f"{path}: PNG without a valid IHDR header")
    _, _, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    if colour_type != 3 or depth != 8 or b"PLTE" not in chunks:
        raise AnnotationFileError(f"{path}: not an 8-bit indexed PNG (colour type {colour_type}, depth {depth})")
    plte = np.frombuffer(chunks[b"PLTE"], np.uint8)
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(plte) // 3] = plte[: len(plte) // 3 * 3].reshape(-1, 3)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise AnnotationFileError(f"{path}: PNG data cannot be decoded (truncated or corrupt)")
    n = len(plte) // 3
    codes = _codes(palette[:n])
    if len(np.unique(codes)) != n:
        raise AnnotationFileError(f"{path}: palette repeats a colour, ids cannot be recovered from colours")
    order = np.argsort(codes)
    pixel = _codes(bgr[..., ::-1].reshape(-1, 3))
    at = np.clip(np.searchsorted(codes[order], pixel), 0, n - 1)
    if not np.array_equal(codes[order][at], pixel):
        raise AnnotationFileError(f"{path}: pixel colours not in the palette")
    return order[at].astype(np.uint8).reshape(bgr.shape[:2]), palette


def _codes(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _chunks(path: Path, data: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if at + 12 + length > len(data):
            raise AnnotationFileError(f"{path}: PNG chunk {kind!r} runs past the end of the file (truncated)")
        out.setdefault(kind, data[at + 8:at + 8 + length])
        at += 12 + length
        if kind == b"IEND":
            break
    return out
