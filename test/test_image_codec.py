"""Image <-> numpy: every supported encoding, row padding, and a clear error for each bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from movseg_ros.ros.image_codec import (BadImage, decode_compressed, decode_image, decode_label_map,  # noqa: E402
                                        encode_image, encode_label_map, header_of, stamp_ns_of)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), np.uint8)
HEADER = header_of(1_700_000_000_123_456_789, "camera_optical")


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """An Image whose rows carry `pad` extra bytes, as some drivers send them."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 77, np.uint8)], axis=1)
    return Image(header=HEADER, height=h, width=w, encoding=encoding, step=rows.shape[1] + pad,
                 data=padded.tobytes())


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB),
    ("bgr8", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings_decode_to_rgb(encoding: str, pixels: np.ndarray, pad: int) -> None:
    out = decode_image(raw_image(np.ascontiguousarray(pixels), encoding, pad))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, RGB)


def test_mono8_decodes_to_grey_rgb_with_padding() -> None:
    grey = RGB[:, :, 0].copy()
    out = decode_image(raw_image(grey, "mono8", pad=5))
    assert out.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_decoded_image_is_writable_and_independent_of_the_message() -> None:
    msg = raw_image(RGB, "rgb8")
    out = decode_image(msg)
    out[:] = 0
    np.testing.assert_array_equal(decode_image(msg), RGB)


@pytest.mark.parametrize("encoding", ["yuv422", "32FC1", "mono16", "bayer_rggb8"])
def test_unsupported_encoding_names_it_and_the_supported_ones(encoding: str) -> None:
    with pytest.raises(BadImage) as err:
        decode_image(raw_image(RGB, encoding))
    assert err.value.kind == "encoding"
    assert encoding in str(err.value) and "rgb8" in str(err.value) and "mono8" in str(err.value)


def test_data_shorter_than_step_times_height_is_truncated() -> None:
    msg = raw_image(RGB, "rgb8")
    msg.data = msg.data[:-1]
    with pytest.raises(BadImage) as err:
        decode_image(msg)
    assert err.value.kind == "truncated"
    assert str(7 * 3 * 5) in str(err.value)


def test_step_smaller_than_a_row_is_rejected() -> None:
    msg = raw_image(RGB, "rgb8")
    msg.step = 7 * 3 - 1
    with pytest.raises(BadImage) as err:
        decode_image(msg)
    assert err.value.kind == "step" and "step" in str(err.value)


@pytest.mark.parametrize("h, w", [(0, 7), (5, 0), (0, 0)])
def test_zero_size_image_is_empty(h: int, w: int) -> None:
    msg = Image(header=HEADER, height=h, width=w, encoding="rgb8", step=3 * w, data=b"")
    with pytest.raises(BadImage) as err:
        decode_image(msg)
    assert err.value.kind == "empty"


def test_bad_image_is_a_value_error() -> None:
    assert issubclass(BadImage, ValueError)


@pytest.mark.parametrize("ext, fmt", [(".png", "png"), (".png", "rgb8; png compressed bgr8"), (".jpg", "jpeg")])
def test_compressed_images_decode_to_rgb(ext: str, fmt: str) -> None:
    big = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(ext, cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    assert ok
    out = decode_compressed(CompressedImage(header=HEADER, format=fmt, data=buf.tobytes()))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    tolerance = 0 if ext == ".png" else 40
    assert np.abs(out.astype(int) - big.astype(int)).mean() <= tolerance


def test_compressed_errors_have_kinds() -> None:
    with pytest.raises(BadImage) as err:
        decode_compressed(CompressedImage(format="jpeg", data=b""))
    assert err.value.kind == "empty"
    with pytest.raises(BadImage) as err:
        decode_compressed(CompressedImage(format="jpeg", data=b"\xff\xd8 not really a jpeg"))
    assert err.value.kind == "corrupt"  # a byte where a marker must be
    with pytest.raises(BadImage) as err:
        decode_compressed(CompressedImage(format="h264", data=b"\x00\x01"))
    assert err.value.kind == "encoding" and "h264" in str(err.value)


def test_label_map_is_little_endian_mono16_with_the_input_header() -> None:
    labels = np.array([[0, 1, 258], [65535, 7, 0]], np.uint16)
    msg = encode_label_map(labels, HEADER)
    assert (msg.encoding, msg.is_bigendian, msg.step, msg.height, msg.width) == ("mono16", 0, 6, 2, 3)
    assert bytes(msg.data[4:6]) == b"\x02\x01"  # 258 little-endian
    assert msg.header == HEADER and msg.header is not HEADER
    np.testing.assert_array_equal(decode_label_map(msg), labels)


def test_overlay_is_bgr8() -> None:
    msg = encode_image(RGB, HEADER, "bgr8")
    assert (msg.encoding, msg.step) == ("bgr8", 21)
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8).reshape(5, 7, 3), RGB[:, :, ::-1])
    np.testing.assert_array_equal(decode_image(msg), RGB)


def test_header_stamp_round_trips_through_nanoseconds() -> None:
    assert stamp_ns_of(HEADER) == 1_700_000_000_123_456_789
    assert header_of(stamp_ns_of(HEADER), HEADER.frame_id) == HEADER
    assert stamp_ns_of(Header()) == 0


def test_a_cut_off_jpeg_is_refused_not_decoded_as_grey_fill() -> None:
    big = cv2.resize(RGB, (320, 240), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", big)
    assert ok
    data = buf.tobytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 4):
        with pytest.raises(BadImage) as err:
            decode_compressed(CompressedImage(format="jpeg", data=data[:cut]))
        assert err.value.kind == "truncated", (cut, str(err.value))
