"""BagRecorder: bytes serialized by rclpy go into the bag unchanged and read back through rosbags."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402

from bags_helpers import label_maps, random_frames  # noqa: E402
from movseg_ros.bags.errors import BagError  # noqa: E402
from movseg_ros.bags.reader import bag_info, read_images, read_label_maps  # noqa: E402
from movseg_ros.bags.topics import IMAGE_TOPIC, INSTANCES_TOPIC, TRACKS_TOPIC  # noqa: E402
from movseg_ros.bags.writer import BagRecorder  # noqa: E402
from movseg_ros.ros.image_codec import encode_image, encode_label_map, header_of  # noqa: E402


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_rclpy_serialized_images_and_label_maps_round_trip(tmp_path: Path, storage: str) -> None:
    frames, maps = random_frames(4, seed=21), label_maps(4)
    stamps = [1_700_000_000_000_000_000 + i * 33_333_333 for i in range(4)]
    with BagRecorder(tmp_path / "rec", storage) as recorder:
        recorder.add_topic(IMAGE_TOPIC, "sensor_msgs/msg/Image")
        recorder.add_topic(INSTANCES_TOPIC, "sensor_msgs/msg/Image")
        recorder.add_topic(TRACKS_TOPIC, "sensor_msgs/msg/PointCloud2")
        for rgb, labels, stamp in zip(frames, maps, stamps):
            header = header_of(stamp, "camera_optical")
            recorder.write(IMAGE_TOPIC, stamp + 5, serialize_message(encode_image(rgb, header, "bgr8")))
            recorder.write(INSTANCES_TOPIC, stamp + 9, serialize_message(encode_label_map(labels, header)))
            recorder.write(TRACKS_TOPIC, stamp + 9, serialize_message(PointCloud2(header=header)))
    assert recorder.closed and recorder.counts == {IMAGE_TOPIC: 4, INSTANCES_TOPIC: 4, TRACKS_TOPIC: 4}

    info = bag_info(tmp_path / "rec")
    assert (info.storage, info.message_count) == (storage, 12)
    assert info.topic(TRACKS_TOPIC).msgtype == "sensor_msgs/msg/PointCloud2"
    images = list(read_images(tmp_path / "rec", IMAGE_TOPIC))
    assert [m.stamp_ns for m in images] == stamps and [m.log_ns for m in images] == [s + 5 for s in stamps]
    assert {(m.encoding, m.frame_id) for m in images} == {("bgr8", "camera_optical")}
    for message, rgb in zip(images, frames):
        np.testing.assert_array_equal(message.image, rgb)
    predictions = read_label_maps(tmp_path / "rec", INSTANCES_TOPIC)
    assert sorted(predictions) == stamps
    for labels, stamp in zip(maps, stamps):
        np.testing.assert_array_equal(predictions[stamp], labels)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])  # sqlite3 connections are tied to one thread
def test_writes_from_several_threads_all_land(tmp_path: Path, storage: str) -> None:
    rgb = random_frames(1, 8, 8)[0]
    payloads = {t: serialize_message(encode_image(rgb, header_of(t, "c"))) for t in range(4)}

    def record(recorder: BagRecorder, thread: int) -> None:
        for i in range(50):
            recorder.write(f"/cam{thread}", 1_000_000 * i + thread, payloads[thread])

    with BagRecorder(tmp_path / "threads", storage) as recorder:
        for t in range(4):
            recorder.add_topic(f"/cam{t}", "sensor_msgs/msg/Image")
        threads = [threading.Thread(target=record, args=(recorder, t)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert recorder.errors == []
    info = bag_info(tmp_path / "threads")
    assert info.message_count == 200 and all(t.count == 50 for t in info.topics)
    for t in range(4):
        assert {m.stamp_ns for m in read_images(tmp_path / "threads", f"/cam{t}")} == {t}


def test_recorder_misuse_is_a_bag_error(tmp_path: Path) -> None:
    recorder = BagRecorder(tmp_path / "r")
    recorder.add_topic("/a", "sensor_msgs/msg/Image")
    recorder.add_topic("/a", "sensor_msgs/msg/Image")  # the same declaration twice is harmless
    with pytest.raises(BagError, match="added as sensor_msgs/msg/Image"):
        recorder.add_topic("/a", "std_msgs/msg/String")
    with pytest.raises(BagError, match="unknown to the ROS 2 typestore"):
        recorder.add_topic("/b", "my_pkg/msg/Thing")
    with pytest.raises(BagError, match=r"topic /b was not added \(added: \['/a'\]\)") as err:
        recorder.write("/b", 0, b"")
    assert str(tmp_path / "r") in str(err.value)
    recorder.close()
    recorder.close()
    with pytest.raises(BagError, match="closed"):
        recorder.write("/a", 0, b"")
    with pytest.raises(BagError, match="already exists"):
        BagRecorder(tmp_path / "r")
    with pytest.raises(ValueError, match="unknown storage 'bag1'"):
        BagRecorder(tmp_path / "other", "bag1")


def test_a_recording_interrupted_by_an_exception_is_still_a_readable_bag(tmp_path: Path) -> None:
    rgb = random_frames(1, 8, 8)[0]
    with pytest.raises(RuntimeError, match="node died"):
        with BagRecorder(tmp_path / "cut") as recorder:
            recorder.add_topic(IMAGE_TOPIC, "sensor_msgs/msg/Image")
            recorder.write(IMAGE_TOPIC, 1, serialize_message(encode_image(rgb, header_of(1, "c"))))
            raise RuntimeError("node died")
    assert [m.stamp_ns for m in read_images(tmp_path / "cut", IMAGE_TOPIC)] == [1]
