"""Annotation and prediction image files: palette PNGs (the DAVIS palette), grey masks, colour-coded maps.

OpenCV turns an indexed PNG into colours, so indexed files are read with Pillow, which keeps the
palette indices (the object ids of DAVIS 2017 and YouTube-VOS). A file is checked whole first
(movseg_ros.image_format): a cut-off or corrupt one is a BadImageFile naming it.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from movseg_ros.datasets.errors import BadImageFile, DatasetError
from movseg_ros.image_format import ImageFileError, read_image_bytes
from movseg_ros.safe_text import printable

VOID = 255  # DAVIS 2017 / YouTube-VOS palette index of pixels that are not scored


@lru_cache(maxsize=1)
def davis_palette() -> np.ndarray:
    """The 256-colour palette of DAVIS 2017 annotations (the PASCAL VOC colour map): 256x3 uint8."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        code, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= (code & 1) << (7 - bit)
            g |= ((code >> 1) & 1) << (7 - bit)
            b |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        palette[index] = (r, g, b)
    palette.setflags(write=False)
    return palette


def colour_codes(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 colours as one int32 code per pixel: r * 65536 + g * 256 + b (FBMS's own colour code)."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError) as e:
        raise DatasetError(path, f"cannot read image header ({printable(e)})") from None
    return height, width


def read_raw_labels(path: Path) -> tuple[np.ndarray, str]:
    """The file's pixel values and how to take them: ("index", HxW palette indices),
    ("grey", HxW grey levels or 16-bit values) or ("colour", HxW colour codes)."""
    data = checked_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            if mode == "P":
                return np.asarray(image, np.uint8).copy(), "index"
            if mode in ("L", "1"):
                return np.asarray(image.convert("L"), np.uint8).copy(), "grey"
            if mode.startswith("I"):
                return np.asarray(image, np.int64).astype(np.int32), "grey"
            if mode in ("RGB", "RGBA"):
                return colour_codes(np.asarray(image.convert("RGB"))), "colour"
    except (OSError, ValueError, SyntaxError) as e:
        raise BadImageFile(path, f"Pillow cannot decode the image: {printable(e)}") from None
    raise DatasetError(path, f"unsupported image mode {mode!r} for a label map")


def read_rgb(path: Path) -> np.ndarray:
    """Any image file as HxWx3 uint8 RGB (an indexed file through its palette)."""
    data = checked_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB")).copy()
    except (OSError, ValueError, SyntaxError) as e:
        raise BadImageFile(path, f"Pillow cannot decode the image: {printable(e)}") from None


def checked_bytes(path: Path) -> bytes:
    """The file's bytes, a PNG or JPEG checked whole; BadImageFile names the file and the problem."""
    try:
        return read_image_bytes(path)
    except ImageFileError as e:
        raise BadImageFile(path, e.problem) from None


def read_palette_indices(path: Path) -> np.ndarray:
    """DAVIS 2017 / YouTube-VOS annotation as palette indices (uint8); an RGB copy is mapped back
    through the DAVIS palette, a grey file's levels are taken as the indices."""
    raw, kind = read_raw_labels(path)
    if kind == "colour":
        return _indices_of_colours(raw, path)
    if raw.max(initial=0) > 255:
        raise DatasetError(path, f"values up to {int(raw.max())} do not fit a palette (0..255)")
    return raw.astype(np.uint8)


def _indices_of_colours(codes: np.ndarray, path: Path) -> np.ndarray:
    """Map colour codes to DAVIS palette indices; a colour outside the palette is an error."""
    palette_codes = colour_codes(davis_palette()[None])[0]
    lookup = {int(code): index for index, code in reversed(list(enumerate(palette_codes)))}
    out = np.zeros(codes.shape, np.uint8)
    for code in np.unique(codes):
        if int(code) not in lookup:
            r, g, b = int(code) >> 16, (int(code) >> 8) & 255, int(code) & 255
            raise DatasetError(path, f"colour ({r}, {g}, {b}) is not in the DAVIS palette")
        out[codes == code] = lookup[int(code)]
    return out


def binary_palette() -> np.ndarray:
    """256x3 palette with index 0 black and index 1 white: a binary mask that every reader sees right.

    Index readers (PIL, the DAVIS 2017 tools) get 0/1, one object; readers that apply the
    palette (OpenCV, imageio) get 0/255 grey, the DAVIS 2016 convention.
    """
    palette = np.zeros((256, 3), np.uint8)
    palette[1] = 255
    return palette


def write_palette_png(path: Path, indices: np.ndarray, palette: np.ndarray | None = None) -> Path:
    """Save HxW uint8 indices as an indexed PNG (mode 'P') carrying `palette` (default: DAVIS's)."""
    if indices.ndim != 2 or indices.dtype != np.uint8:
        raise ValueError(f"palette indices must be HxW uint8, got shape {indices.shape} dtype {indices.dtype}")
    image = Image.fromarray(indices)
    image.putpalette((davis_palette() if palette is None else palette).tobytes())
    try:
        image.save(path, format="PNG")
    except OSError as e:
        raise DatasetError(path, f"cannot write ({e})") from None
    return path
