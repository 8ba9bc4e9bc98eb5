"""Reading bags: image messages of every encoding, topic choice, single storage files, `movseg bag info`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bags_helpers import label_maps, random_frames, run_bag
from movseg_ros.bags.errors import BagError
from movseg_ros.bags.image_msgs import (ImageDecodeError, decode_image, decode_label_map, encode_image,
                                        ros2_typestore, serialize, stamp_ns_of)
from movseg_ros.bags.reader import bag_info, read_images, read_label_maps, select_image_topic
from movseg_ros.bags.topics import IMAGE_TOPIC, INSTANCES_TOPIC, TRUTH_TOPIC
from movseg_ros.bags.writer import START_NS, BagMakeConfig, BagRecorder, write_image_bag

STORE = ros2_typestore()
RGB = random_frames(1, 5, 7, seed=11)[0]
IMAGE = "sensor_msgs/msg/Image"


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: int = 0, stamp_ns: int = 42) -> object:
    """A rosbags Image whose rows carry `pad` extra bytes, as some drivers send them."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).view(np.uint8) if pixels.dtype != np.uint8 else pixels.reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 77, np.uint8)], axis=1)
    msg = encode_image(STORE, np.zeros((h, w), np.uint8), "mono8", stamp_ns, "cam")
    msg.encoding, msg.step, msg.is_bigendian = encoding, rows.shape[1] + pad, bigendian
    msg.data = np.ascontiguousarray(padded).reshape(-1)
    return msg


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB), ("bgr8", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings_decode_to_rgb_through_cdr(encoding: str, pixels: np.ndarray, pad: int) -> None:
    msg = raw_image(np.ascontiguousarray(pixels), encoding, pad)
    back = STORE.deserialize_cdr(serialize(STORE, msg, IMAGE), IMAGE)
    np.testing.assert_array_equal(decode_image(back), RGB)


def test_mono8_and_mono16_of_either_byte_order() -> None:
    grey = RGB[:, :, 1].copy()
    out = decode_image(raw_image(grey, "mono8", pad=2))
    assert out.shape == (5, 7, 3) and all((out[:, :, c] == grey).all() for c in range(3))
    labels = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1800  # up to 61200: both bytes matter
    little = raw_image(labels.astype("<u2"), "mono16", pad=4)
    big = raw_image(labels.astype(">u2"), "16UC1", pad=4, bigendian=1)
    for msg in (little, big):
        assert decode_image(msg).dtype == np.uint16
        np.testing.assert_array_equal(decode_image(msg), labels)
        np.testing.assert_array_equal(decode_label_map(msg), labels)
    np.testing.assert_array_equal(decode_label_map(raw_image(grey, "mono8")), grey.astype(np.uint16))


def test_encode_image_writes_unpadded_little_endian_with_the_stamp() -> None:
    labels = np.array([[0, 1, 258], [65535, 7, 0]], np.uint16)
    msg = encode_image(STORE, labels, "mono16", 1_700_000_000_123_456_789, "optical")
    assert (msg.encoding, msg.is_bigendian, msg.step, msg.height, msg.width) == ("mono16", 0, 6, 2, 3)
    assert bytes(msg.data[4:6]) == b"\x02\x01"  # 258 little-endian
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert stamp_ns_of(msg) == 1_700_000_000_123_456_789 and msg.header.frame_id == "optical"
    bgr = encode_image(STORE, RGB, "bgr8", 0, "")
    np.testing.assert_array_equal(np.asarray(bgr.data).reshape(5, 7, 3), RGB[:, :, ::-1])
    np.testing.assert_array_equal(decode_image(bgr), RGB)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        encode_image(STORE, labels, "rgb8", 0, "")
    with pytest.raises(ValueError, match="yuv422"):
        encode_image(STORE, RGB, "yuv422", 0, "")


@pytest.mark.parametrize("change, kind", [
    ({"encoding": "yuv422"}, "encoding"), ({"step": 20}, "step"),
    ({"height": 0}, "empty"), ({"height": 6}, "truncated"),
])
def test_bad_image_messages_raise_image_decode_error_with_a_kind(change: dict, kind: str) -> None:
    msg = raw_image(RGB, "rgb8")
    for name, value in change.items():
        setattr(msg, name, value)
    with pytest.raises(ImageDecodeError) as err:
        decode_image(msg)
    assert err.value.kind == kind and isinstance(err.value, ValueError)


def test_compressed_images_decode(tmp_path: Path) -> None:
    big = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_NEAREST)
    ok, png = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    assert ok
    compressed = STORE.types["sensor_msgs/msg/CompressedImage"]
    header = encode_image(STORE, RGB, "rgb8", 7, "cam").header
    msg = compressed(header=header, format="png", data=png.reshape(-1))
    np.testing.assert_array_equal(decode_image(msg), big)
    with pytest.raises(ImageDecodeError) as err:
        decode_image(compressed(header=header, format="jpeg", data=png.reshape(-1)[:40]))
    assert err.value.kind == "truncated"
    # and through a bag, on a topic that select_image_topic finds by its type
    with BagRecorder(tmp_path / "c", "mcap") as recorder:
        recorder.add_topic("/cam/compressed", "sensor_msgs/msg/CompressedImage")
        recorder.write("/cam/compressed", 7, serialize(STORE, msg, "sensor_msgs/msg/CompressedImage"))
    assert select_image_topic(bag_info(tmp_path / "c")) == "/cam/compressed"
    (only,) = list(read_images(tmp_path / "c", "/cam/compressed"))
    assert only.encoding == "png" and only.stamp_ns == 7
    np.testing.assert_array_equal(only.image, big)


def test_single_storage_files_read_like_the_bag_folder(tmp_path: Path) -> None:
    frames, truth = random_frames(3), label_maps(3)
    for storage, suffix in (("sqlite3", ".db3"), ("mcap", ".mcap")):
        out = tmp_path / storage
        write_image_bag(out, zip(frames, truth), BagMakeConfig(storage=storage))
        (single,) = out.glob(f"*{suffix}")
        folder_info, file_info = bag_info(out), bag_info(single)
        assert file_info.storage == storage
        assert [(t.name, t.count) for t in file_info.topics] == [(t.name, t.count) for t in folder_info.topics]
        assert (file_info.start_ns, file_info.end_ns) == (folder_info.start_ns, folder_info.end_ns)
        for a, b in zip(read_images(single, IMAGE_TOPIC), frames):
            np.testing.assert_array_equal(a.image, b)


def test_select_image_topic(tmp_path: Path) -> None:
    with BagRecorder(tmp_path / "two", "sqlite3") as recorder:
        for topic in ("/left/image", "/right/image", TRUTH_TOPIC, INSTANCES_TOPIC):
            recorder.add_topic(topic, IMAGE)
        recorder.add_topic("/chatter", "std_msgs/msg/String")
    info = bag_info(tmp_path / "two")
    assert info.image_topics() == ["/left/image", "/right/image", TRUTH_TOPIC, INSTANCES_TOPIC]
    assert select_image_topic(info, "/right/image") == "/right/image"
    with pytest.raises(BagError, match="several image topics, pick one: /left/image, /right/image$"):
        select_image_topic(info)
    with pytest.raises(BagError, match="/nope is not in the bag; it has: /left/image") as err:
        select_image_topic(info, "/nope")
    assert str(tmp_path / "two") in str(err.value) and "/chatter (std_msgs/msg/String, 0 msgs)" in str(err.value)
    with pytest.raises(BagError, match="/chatter has type std_msgs/msg/String"):
        select_image_topic(info, "/chatter")
    one = write_image_bag(tmp_path / "one", zip(random_frames(1), label_maps(1)),
                          BagMakeConfig(image_topic="/front/rgb"))
    assert select_image_topic(bag_info(one.path)) == "/front/rgb"  # truth is never the camera


def test_label_maps_keep_the_first_of_duplicate_stamps(tmp_path: Path) -> None:
    maps = label_maps(3)
    with BagRecorder(tmp_path / "dup", "sqlite3") as recorder:
        recorder.add_topic(INSTANCES_TOPIC, IMAGE)
        for i, (labels, stamp) in enumerate(zip(maps, (100, 200, 100))):
            recorder.write(INSTANCES_TOPIC, 1000 + i, serialize(STORE, encode_image(STORE, labels, "mono16", stamp, ""),
                                                                IMAGE))
    got = read_label_maps(tmp_path / "dup", INSTANCES_TOPIC)
    assert sorted(got) == [100, 200] and got.report.duplicates == 1 and got.report.read == 3
    np.testing.assert_array_equal(got[100], maps[0])


def test_bag_info_command_describes_topics_rates_stamps_and_pairing(tmp_path: Path, capsys) -> None:
    frames, truth = random_frames(5), label_maps(5)
    pairs = [(f, t if i != 3 else None) for i, (f, t) in enumerate(zip(frames, truth))]
    bag = write_image_bag(tmp_path / "b", pairs, BagMakeConfig(rate_hz=20.0, storage="mcap")).path
    assert run_bag("info", str(bag), "--json", str(tmp_path / "info.json")) == 0
    text = capsys.readouterr().out
    assert "storage   mcap, 9 messages" in text and "duration  0.200 s" in text
    assert "2023-11-14 22:13:20.000000000 UTC" in text
    image_row = next(line for line in text.splitlines() if line.startswith(IMAGE_TOPIC))
    assert image_row.split()[1:5] == ["sensor_msgs/msg/Image", "5", "20.00", "increasing"]
    assert image_row.endswith("rgb8 52x36")
    truth_row = next(line for line in text.splitlines() if line.startswith(TRUTH_TOPIC))
    assert truth_row.split()[2] == "4" and truth_row.endswith("mono16 52x36")
    assert f"{IMAGE_TOPIC} vs {TRUTH_TOPIC}: 4 of 5 images have a label map with the same stamp, 1 without" in text
    data = json.loads((tmp_path / "info.json").read_text())
    assert data["info"]["start_ns"] == START_NS and data["info"]["duration_ns"] == 200_000_000
    rows = {t["name"]: t for t in data["topics"]}
    assert rows[IMAGE_TOPIC]["rate_hz"] == pytest.approx(20.0) and rows[IMAGE_TOPIC]["stamps_monotonic"] is True
    assert data["pairings"] == [{"image_topic": IMAGE_TOPIC, "label_topic": TRUTH_TOPIC, "images": 5, "with_label": 4,
                                 "without_label": 1, "labels_without_image": 0}]


def test_bag_info_reports_header_stamps_that_go_back(tmp_path: Path, capsys) -> None:
    with BagRecorder(tmp_path / "b", "sqlite3") as recorder:
        recorder.add_topic(IMAGE_TOPIC, IMAGE)
        for log, stamp in enumerate((10, 30, 20, 20, 40)):
            recorder.write(IMAGE_TOPIC, log, serialize(STORE, encode_image(STORE, RGB, "rgb8", stamp, ""), IMAGE))
    assert run_bag("info", str(tmp_path / "b")) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(IMAGE_TOPIC))
    assert "1 back, 1 repeated" in row
