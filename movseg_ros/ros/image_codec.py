"""sensor_msgs Image / CompressedImage <-> numpy, without cv_bridge (no ROS 2 wheel exists).

Decoding returns HxWx3 uint8 RGB, the one layout the core takes; malformed input raises
`BadImage` whose `kind` lets the node count problems by type.
"""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

# encoding -> (channels, OpenCV conversion to RGB or None when already RGB)
DECODERS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
}
COMPRESSED_FORMATS = ("jpeg", "png")


class BadImage(ValueError):
    """An input image that cannot be decoded; `kind` names the problem class for counting."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def copy_header(header: Header) -> Header:
    """A new Header with the same stamp and frame_id (outputs must not alias the input)."""
    out = Header(frame_id=header.frame_id)
    out.stamp.sec = header.stamp.sec
    out.stamp.nanosec = header.stamp.nanosec
    return out


def header_of(stamp_ns: int, frame_id: str) -> Header:
    """The Header whose stamp is `stamp_ns` (inverse of `stamp_ns_of`)."""
    out = Header(frame_id=frame_id)
    out.stamp.sec, out.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return out


def stamp_ns_of(header: Header) -> int:
    """The header stamp as integer nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def decode_image(msg: Image) -> np.ndarray:
    """HxWx3 uint8 RGB from an 8-bit Image, honouring row padding (`step`)."""
    enc = msg.encoding.lower()
    if enc not in DECODERS:
        raise BadImage("encoding", f"unsupported encoding '{msg.encoding}' (supported: {', '.join(DECODERS)})")
    channels, conversion = DECODERS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise BadImage("empty", f"image is empty: {w}x{h}")
    row = w * channels
    if step < row:
        raise BadImage("step", f"step {step} is less than width*channels = {w}*{channels} = {row} for {enc}")
    data = np.frombuffer(msg.data, np.uint8)
    if data.size < step * h:
        raise BadImage("truncated", f"data has {data.size} bytes, need step*height = {step}*{h} = {step * h}")
    pixels = data[: step * h].reshape(h, step)[:, :row].reshape(h, w, channels)
    if conversion is None:
        return pixels.copy()  # own the pixels: never alias the message buffer
    return cv2.cvtColor(pixels if channels > 1 else pixels[:, :, 0], conversion)


def decode_compressed(msg: CompressedImage) -> np.ndarray:
    """HxWx3 uint8 RGB from a jpeg or png CompressedImage."""
    fmt = msg.format.lower()
    if not any(f in fmt for f in COMPRESSED_FORMATS) and fmt.strip():
        raise BadImage("encoding", f"unsupported compressed format '{msg.format}' (supported: {', '.join(COMPRESSED_FORMATS)})")
    data = np.frombuffer(msg.data, np.uint8)
    if data.size == 0:
        raise BadImage("empty", "compressed image has no data")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadImage("truncated", f"cannot decode {data.size} bytes of '{msg.format}' data (corrupt or truncated)")
    if bgr.shape[0] == 0 or bgr.shape[1] == 0:
        raise BadImage("empty", f"compressed image decodes to an empty {bgr.shape[1]}x{bgr.shape[0]} image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_image(rgb: np.ndarray, header: Header, encoding: str = "rgb8") -> Image:
    """An Image from HxWx3 uint8 RGB in `rgb8` or `bgr8` (the camera side, and the overlay)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"need HxWx3 uint8 RGB, got shape {rgb.shape} dtype {rgb.dtype}")
    if encoding == "bgr8":
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == "rgb8":
        pixels = np.ascontiguousarray(rgb)
    else:
        raise ValueError(f"encode_image writes rgb8 or bgr8, not '{encoding}'")
    h, w = rgb.shape[:2]
    return Image(header=copy_header(header), height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=3 * w, data=pixels.tobytes())


def encode_label_map(label_map: np.ndarray, header: Header) -> Image:
    """A `mono16` Image (little-endian, unpadded) from an HxW uint16 label map."""
    if label_map.ndim != 2:
        raise ValueError(f"label map must be HxW, got shape {label_map.shape}")
    h, w = label_map.shape
    data = np.ascontiguousarray(label_map, dtype="<u2").tobytes()
    return Image(header=copy_header(header), height=h, width=w, encoding="mono16", is_bigendian=0,
                 step=2 * w, data=data)


def decode_label_map(msg: Image) -> np.ndarray:
    """HxW uint16 from a `mono16` Image of either byte order (the subscriber side)."""
    if msg.encoding != "mono16":
        raise BadImage("encoding", f"label map must be mono16, got '{msg.encoding}'")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if step < 2 * w:
        raise BadImage("step", f"step {step} is less than 2*width = {2 * w}")
    data = np.frombuffer(msg.data, np.uint8)
    if data.size < step * h:
        raise BadImage("truncated", f"data has {data.size} bytes, need step*height = {step * h}")
    rows = data[: step * h].reshape(h, step)[:, : 2 * w]
    return rows.copy().view(">u2" if msg.is_bigendian else "<u2").reshape(h, w).astype(np.uint16)
