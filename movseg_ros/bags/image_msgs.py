"""sensor_msgs Image / CompressedImage as `rosbags` message objects <-> numpy (no rclpy).

The typestore is the ROS 2 Kilted one (the rclpy in this venv); sensor_msgs/Image and
CompressedImage are identical in Jazzy and Kilted, so bags from either read the same.
Pixel decoding is shared with the node through movseg_ros/image_bytes.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from movseg_ros.bags.topics import COMPRESSED_MSGTYPE, IMAGE_MSGTYPE
from movseg_ros.image_bytes import (COLOUR_ENCODINGS, ImageDecodeError, MONO16_ENCODINGS,  # noqa: F401
                                    decode_compressed_bytes, decode_image_bytes, decode_label_bytes,
                                    decode_rgb_bytes)
from movseg_ros.safe_text import printable

TYPESTORE_RELEASE = Stores.ROS2_KILTED
ENCODABLE = ("rgb8", "bgr8", "mono8", "mono16")
NS_PER_S = 1_000_000_000


@lru_cache(maxsize=1)
def ros2_typestore() -> Typestore:
    """The rosbags typestore of ROS 2 Kilted (built once: building it parses every message type)."""
    return get_typestore(TYPESTORE_RELEASE)


def stamp_ns_of(msg: object) -> int:
    """The header stamp of a message with a std_msgs/Header, as integer nanoseconds."""
    stamp = msg.header.stamp  # type: ignore[attr-defined]
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def make_header(typestore: Typestore, stamp_ns: int, frame_id: str) -> object:
    """A std_msgs/msg/Header whose stamp is `stamp_ns` (must be >= 0)."""
    if stamp_ns < 0:
        raise ValueError(f"stamp must be >= 0 ns, got {stamp_ns}")
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    time = typestore.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return typestore.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def encode_image(typestore: Typestore, array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> object:
    """A sensor_msgs/msg/Image, unpadded and little-endian.

    rgb8 / bgr8 take HxWx3 uint8 RGB (bgr8 swaps the channels on the wire); mono8 takes HxW
    uint8; mono16 takes an HxW label map of any unsigned integer or bool type that fits 16 bits.
    """
    if encoding in ("rgb8", "bgr8"):
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise ValueError(f"{encoding} needs HxWx3 uint8 RGB, got shape {array.shape} dtype {array.dtype}")
        pixels = np.ascontiguousarray(array if encoding == "rgb8" else array[:, :, ::-1])
    elif encoding == "mono8":
        if array.ndim != 2 or array.dtype != np.uint8:
            raise ValueError(f"mono8 needs HxW uint8, got shape {array.shape} dtype {array.dtype}")
        pixels = np.ascontiguousarray(array)
    elif encoding == "mono16":
        pixels = np.ascontiguousarray(label_map_uint16(array), dtype="<u2")
    else:
        raise ValueError(f"encode_image writes {', '.join(ENCODABLE)}, not '{encoding}'")
    h, w = pixels.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"cannot encode an empty {w}x{h} image")
    data = pixels.reshape(-1).view(np.uint8)
    image_type = typestore.types[IMAGE_MSGTYPE]
    return image_type(header=make_header(typestore, stamp_ns, frame_id), height=h, width=w, encoding=encoding,
                      is_bigendian=0, step=data.size // h, data=data)


def label_map_uint16(labels: np.ndarray) -> np.ndarray:
    """An HxW label map as uint16; refuses shapes, signed negatives and values that do not fit."""
    if labels.ndim != 2:
        raise ValueError(f"label map must be HxW, got shape {labels.shape}")
    if labels.dtype == np.bool_:
        return labels.astype(np.uint16)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label map must hold integers, got dtype {labels.dtype}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 0xFFFF):
        raise ValueError(f"label ids must be in 0..65535, got {int(labels.min())}..{int(labels.max())}")
    return labels.astype(np.uint16, copy=False)


def decode_image(msg: object) -> np.ndarray:
    """An Image or CompressedImage message as numpy.

    8-bit encodings (rgb8, bgr8, rgba8, bgra8, mono8) and jpeg/png compressed images give HxWx3
    uint8 RGB; mono16 / 16UC1 give the HxW uint16 values. Raises ImageDecodeError with a `kind`.
    """
    if hasattr(msg, "format"):  # CompressedImage
        return decode_compressed_bytes(msg.format, msg.data)  # type: ignore[attr-defined]
    enc = str(msg.encoding)  # type: ignore[attr-defined]
    if enc.lower() in MONO16_ENCODINGS:
        return decode_image_bytes(msg.height, msg.width, enc, msg.step, msg.data,  # type: ignore[attr-defined]
                                  msg.is_bigendian)  # type: ignore[attr-defined]
    if enc.lower() not in COLOUR_ENCODINGS:
        supported = ", ".join([*COLOUR_ENCODINGS, "mono16", "16UC1"])
        raise ImageDecodeError("encoding", f"unsupported encoding '{printable(enc, 40)}' (supported: {supported})")
    return decode_rgb_bytes(msg.height, msg.width, enc, msg.step, msg.data)  # type: ignore[attr-defined]


def decode_label_map(msg: object) -> np.ndarray:
    """HxW uint16 label map from a mono16 / 16UC1 (either byte order) or mono8 Image message."""
    if hasattr(msg, "format"):
        raise ImageDecodeError("encoding", f"label maps must be raw {IMAGE_MSGTYPE} (mono16), not {COMPRESSED_MSGTYPE}")
    return decode_label_bytes(msg.height, msg.width, msg.encoding, msg.step, msg.data,  # type: ignore[attr-defined]
                              msg.is_bigendian)  # type: ignore[attr-defined]


def serialize(typestore: Typestore, msg: object, msgtype: str) -> bytes:
    """CDR bytes of a message, as rclpy.serialization.serialize_message writes them."""
    return bytes(typestore.serialize_cdr(msg, msgtype))
