"""Admission of camera messages, in the subscription callback, before anything is queued or decoded.

Everything checkable from the message's fields and a compressed image's header is checked here:
encoding or format, sizes against `max_input_pixels` and the pipeline's minimum, step and data
length. A refused message is counted as bad with its reason, never as dropped, and never costs
the memory of decoding it (a 105 KB PNG can decode to 12000x9000 = 324 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

from sensor_msgs.msg import CompressedImage, Image

from movseg_ros.image_bytes import COLOUR_ENCODINGS, COMPRESSED_FORMATS, ImageDecodeError
from movseg_ros.image_format import check_complete, probe_size
from movseg_ros.pipeline import PipelineConfig, size_problem
from movseg_ros.safe_text import printable

DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class AdmissionLimits:
    """What the node accepts: at most `max_input_pixels`, and frames the pipeline can use."""

    max_input_pixels: int
    pipeline: PipelineConfig


def admit(msg: Image | CompressedImage, limits: AdmissionLimits) -> tuple[int, int]:
    """(height, width) of an acceptable message; raises ImageDecodeError (kind, full reason) otherwise."""
    if isinstance(msg, CompressedImage):
        return _admit_compressed(msg, limits)
    return _admit_raw(msg, limits)


def _admit_raw(msg: Image, limits: AdmissionLimits) -> tuple[int, int]:
    enc = msg.encoding.lower()
    if enc not in COLOUR_ENCODINGS:
        raise ImageDecodeError("encoding", f"unsupported encoding '{printable(msg.encoding, 40)}' "
                                           f"(supported: {', '.join(COLOUR_ENCODINGS)})")
    h, w = int(msg.height), int(msg.width)
    _check_size(h, w, limits)
    row = w * COLOUR_ENCODINGS[enc][0]
    if msg.step < row:
        raise ImageDecodeError("step", f"step {msg.step} is less than width*channels = {w}*"
                                       f"{COLOUR_ENCODINGS[enc][0]} = {row} for {enc}")
    if len(msg.data) < msg.step * h:
        raise ImageDecodeError("truncated", f"data has {len(msg.data)} bytes, need step*height = "
                                            f"{msg.step}*{h} = {msg.step * h}")
    return h, w


def _admit_compressed(msg: CompressedImage, limits: AdmissionLimits) -> tuple[int, int]:
    fmt = msg.format.lower()
    if fmt.strip() and not any(f in fmt for f in COMPRESSED_FORMATS):
        raise ImageDecodeError("encoding", f"unsupported compressed format '{printable(msg.format, 40)}' "
                                           f"(supported: {', '.join(COMPRESSED_FORMATS)})")
    if len(msg.data) == 0:
        raise ImageDecodeError("empty", "compressed image has no data")
    data = memoryview(msg.data)
    _, w, h = probe_size(data)
    _check_size(h, w, limits)
    check_complete(data)  # a cut-off body too is bad input, not a frame for the queue to drop
    return h, w


def _check_size(h: int, w: int, limits: AdmissionLimits) -> None:
    if h <= 0 or w <= 0:
        raise ImageDecodeError("empty", f"image is empty: {w}x{h}")
    if h * w > limits.max_input_pixels:
        raise ImageDecodeError("too_large", f"{w}x{h} = {h * w} pixels is over max_input_pixels = "
                                            f"{limits.max_input_pixels}")
    problem = size_problem(h, w, limits.pipeline)
    if problem is not None:
        raise ImageDecodeError("too_small", f"{problem}, too small for pipeline '{limits.pipeline.pipeline}'")
