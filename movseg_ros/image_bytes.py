"""sensor_msgs Image / CompressedImage payloads -> numpy, at the byte level and free of ROS.

Both the node (rclpy messages, movseg_ros/ros/image_codec.py) and the bag tools (rosbags
messages, movseg_ros/bags/image_msgs.py) decode through these functions, so a malformed image
fails the same way, with an `ImageDecodeError` whose `kind` names the problem class.
"""

from __future__ import annotations

import cv2
import numpy as np

from movseg_ros.safe_text import printable

# 8-bit camera encodings -> (channels, OpenCV conversion to RGB or None when already RGB)
COLOUR_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
}
# 16-bit single-channel encodings (label maps, depth-like data)
MONO16_ENCODINGS = ("mono16", "16uc1")
COMPRESSED_FORMATS = ("jpeg", "png")
ERROR_KINDS = ("encoding", "truncated", "empty", "step", "too_large", "too_small", "corrupt")


class ImageDecodeError(ValueError):
    """An image payload that cannot be decoded; `kind` (one of ERROR_KINDS) names the problem class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def channels_and_dtype(encoding: str) -> tuple[int, np.dtype]:
    """Channels and pixel type of a supported raw encoding (case-insensitive)."""
    enc = encoding.lower()
    if enc in COLOUR_ENCODINGS:
        return COLOUR_ENCODINGS[enc][0], np.dtype(np.uint8)
    if enc in MONO16_ENCODINGS:
        return 1, np.dtype(np.uint16)
    supported = ", ".join([*COLOUR_ENCODINGS, "mono16", "16UC1"])
    raise ImageDecodeError("encoding", f"unsupported encoding '{printable(encoding, 40)}' (supported: {supported})")


def decode_image_bytes(height: int, width: int, encoding: str, step: int, data, is_bigendian: bool | int = 0
                       ) -> np.ndarray:
    """The pixels in the message's own layout, honouring row padding (`step`) and byte order.

    Returns HxWxC uint8 for the colour encodings, HxW uint8 for mono8 and HxW native uint16 for
    mono16/16UC1. The array owns its memory: it never aliases the message buffer.
    """
    channels, dtype = channels_and_dtype(encoding)
    h, w, step = int(height), int(width), int(step)
    if h == 0 or w == 0:
        raise ImageDecodeError("empty", f"image is empty: {w}x{h}")
    row = w * channels * dtype.itemsize
    if step < row:
        raise ImageDecodeError(
            "step", f"step {step} is less than width*channels*bytes = {w}*{channels}*{dtype.itemsize} = {row} "
            f"for {printable(encoding, 40)}")
    raw = np.frombuffer(data, np.uint8)
    if raw.size < step * h:
        raise ImageDecodeError("truncated", f"data has {raw.size} bytes, need step*height = {step}*{h} = {step * h}")
    rows = raw[: step * h].reshape(h, step)[:, :row]
    if dtype.itemsize == 1:
        pixels = rows.reshape(h, w, channels) if channels > 1 else rows.reshape(h, w)
        return pixels.copy()
    wire = np.dtype(">u2" if is_bigendian else "<u2")
    return np.ascontiguousarray(rows).view(wire).reshape(h, w).astype(np.uint16)


def decode_rgb_bytes(height: int, width: int, encoding: str, step: int, data) -> np.ndarray:
    """HxWx3 uint8 RGB from an 8-bit camera encoding (rgb8, bgr8, rgba8, bgra8, mono8)."""
    enc = encoding.lower()
    if enc not in COLOUR_ENCODINGS:
        raise ImageDecodeError(
            "encoding", f"unsupported encoding '{printable(encoding, 40)}' (supported: {', '.join(COLOUR_ENCODINGS)})")
    pixels = decode_image_bytes(height, width, enc, step, data)
    conversion = COLOUR_ENCODINGS[enc][1]
    return pixels if conversion is None else cv2.cvtColor(pixels, conversion)


def decode_label_bytes(height: int, width: int, encoding: str, step: int, data, is_bigendian: bool | int = 0
                       ) -> np.ndarray:
    """HxW uint16 label map from mono16 / 16UC1 (either byte order) or mono8 (values kept)."""
    enc = encoding.lower()
    if enc not in (*MONO16_ENCODINGS, "mono8"):
        raise ImageDecodeError("encoding", f"label map must be mono16 (or 16UC1, mono8), got '{printable(encoding, 40)}'")
    return decode_image_bytes(height, width, enc, step, data, is_bigendian).astype(np.uint16, copy=False)


def decode_compressed_bytes(fmt: str, data) -> np.ndarray:
    """HxWx3 uint8 RGB from the bytes of a jpeg or png CompressedImage (`fmt` is its `format` field)."""
    lowered = fmt.lower()
    if lowered.strip() and not any(f in lowered for f in COMPRESSED_FORMATS):
        raise ImageDecodeError(
            "encoding", f"unsupported compressed format '{printable(fmt, 40)}' (supported: {', '.join(COMPRESSED_FORMATS)})")
    raw = np.frombuffer(data, np.uint8)
    if raw.size == 0:
        raise ImageDecodeError("empty", "compressed image has no data")
    from movseg_ros.image_format import check_complete  # it builds on this module's error type

    check_complete(raw)  # OpenCV decodes a cut-off JPEG as grey fill, without an error
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError("truncated", f"cannot decode {raw.size} bytes of '{printable(fmt, 40)}' data (corrupt or truncated)")
    if bgr.shape[0] == 0 or bgr.shape[1] == 0:
        raise ImageDecodeError("empty", f"compressed image decodes to an empty {bgr.shape[1]}x{bgr.shape[0]} image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
