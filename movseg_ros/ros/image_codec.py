"""sensor_msgs Image / CompressedImage <-> numpy, without cv_bridge (no ROS 2 wheel exists).

Decoding returns HxWx3 uint8 RGB, the one layout the core takes; malformed input raises
`BadImage` whose `kind` lets the node count problems by type. The byte-level work is shared with
the bag tools in movseg_ros/image_bytes.py; this module only unwraps rclpy messages.
"""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from movseg_ros.image_bytes import (COLOUR_ENCODINGS, COMPRESSED_FORMATS, ImageDecodeError,  # noqa: F401
                                    decode_compressed_bytes, decode_label_bytes, decode_rgb_bytes)

DECODERS = COLOUR_ENCODINGS  # encoding -> (channels, OpenCV conversion to RGB or None)
BadImage = ImageDecodeError  # an input image that cannot be decoded; `kind` names the problem class


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
    return decode_rgb_bytes(msg.height, msg.width, msg.encoding, msg.step, msg.data)


def decode_compressed(msg: CompressedImage) -> np.ndarray:
    """HxWx3 uint8 RGB from a jpeg or png CompressedImage."""
    return decode_compressed_bytes(msg.format, msg.data)


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
    return decode_label_bytes(msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian)
