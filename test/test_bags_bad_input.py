"""Bad bags and bad messages: a BagError naming the bag and the problem, never a hang or a silent success."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from bags_helpers import label_maps, random_frames, run_bag, write_png_folder
from movseg_ros.bags.errors import BagError
from movseg_ros.bags.image_msgs import encode_image, ros2_typestore, serialize
from movseg_ros.bags.reader import bag_info, read_images, read_label_maps, select_image_topic
from movseg_ros.bags.topics import IMAGE_TOPIC, TRUTH_TOPIC
from movseg_ros.bags.writer import BagMakeConfig, BagRecorder, write_image_bag

STORE = ros2_typestore()
IMAGE = "sensor_msgs/msg/Image"
pytestmark = pytest.mark.timeout(60)  # a corrupt bag must fail, not hang


def make_bag(folder: Path, storage: str, frames: int = 30) -> Path:
    images, truth = random_frames(frames, 48, 64), label_maps(frames, 48, 64)
    return write_image_bag(folder, zip(images, truth), BagMakeConfig(storage=storage)).path


def storage_file(bag: Path) -> Path:
    (only,) = [p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")]
    return only


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="no such bag") as err:
        bag_info(tmp_path / "nothing")
    assert str(tmp_path / "nothing") in str(err.value)


def test_folder_that_is_not_a_bag(tmp_path: Path) -> None:
    write_png_folder(tmp_path / "frames", random_frames(1))
    with pytest.raises(BagError, match="not a rosbag2 bag: no metadata.yaml in this folder$") as err:
        read_images(tmp_path / "frames", IMAGE_TOPIC)
    assert str(tmp_path / "frames") in str(err.value)


def test_bag_folder_without_metadata_points_at_its_storage_file(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "b", "sqlite3", 2)
    (bag / "metadata.yaml").unlink()
    with pytest.raises(BagError, match="no metadata.yaml.*it holds b.db3: pass one of those files"):
        bag_info(bag)
    assert bag_info(bag / "b.db3").message_count == 4  # as suggested, the file alone reads


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello"), ("empty.db3", b""), ("junk.db3", b"x" * 5000),
                                           ("junk.mcap", b"\x89MCAP0\r\n" + b"\x00" * 100)])
def test_files_that_are_not_bags(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BagError) as err:
        bag_info(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_storage_file(tmp_path: Path, storage: str, fraction: float) -> None:
    bag = make_bag(tmp_path / "b", storage)
    data = storage_file(bag).read_bytes()
    storage_file(bag).write_bytes(data[: int(len(data) * fraction)])
    for target in (bag, storage_file(bag)):  # the bag folder, and the storage file on its own
        start = time.perf_counter()
        with pytest.raises(BagError, match="truncated or corrupt") as err:
            bag_info(target)
        assert str(target) in str(err.value)
        with pytest.raises(BagError, match="truncated or corrupt"):
            read_images(target, IMAGE_TOPIC, on_error="skip")  # skipping messages cannot save an unreadable index
        assert time.perf_counter() - start < 5.0


def test_corruption_inside_a_sqlite_bag_stops_the_read_and_marks_it_partial(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "b", "sqlite3", 40)
    data = bytearray(storage_file(bag).read_bytes())
    at = int(len(data) * 0.3)
    data[at : at + 5000] = b"\xff" * 5000
    storage_file(bag).write_bytes(bytes(data))
    with pytest.raises(BagError, match=r"storage error after \d+ messages on /camera/image_raw") as err:
        list(read_images(bag, IMAGE_TOPIC))
    assert str(bag) in str(err.value)
    stream = read_images(bag, IMAGE_TOPIC, on_error="skip")
    got = list(stream)
    assert 0 < len(got) < 40 and stream.report.read == len(got)
    assert stream.report.partial and "truncated or corrupt" in stream.report.stopped


def test_topic_not_in_bag_lists_the_topics(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "b", "mcap", 2)
    with pytest.raises(BagError) as err:
        read_images(bag, "/camera/color/image_raw")
    text = str(err.value)
    assert str(bag) in text and "/camera/color/image_raw is not in the bag" in text
    assert f"{IMAGE_TOPIC} (sensor_msgs/msg/Image, 2 msgs)" in text and TRUTH_TOPIC in text


def test_bag_without_any_image_topic(tmp_path: Path) -> None:
    with BagRecorder(tmp_path / "chat") as recorder:
        recorder.add_topic("/chatter", "std_msgs/msg/String")
        recorder.write("/chatter", 1, serialize(STORE, STORE.types["std_msgs/msg/String"](data="hi"),
                                                "std_msgs/msg/String"))
    with pytest.raises(BagError, match="no camera image topic in the bag; it has: /chatter"):
        select_image_topic(bag_info(tmp_path / "chat"))
    with pytest.raises(BagError, match="/chatter has type std_msgs/msg/String, expected sensor_msgs/msg/Image"):
        read_images(tmp_path / "chat", "/chatter")
    with pytest.raises(BagError, match="/chatter has type std_msgs/msg/String, expected sensor_msgs/msg/Image$"):
        read_label_maps(tmp_path / "chat", "/chatter")


def bag_with_bad_messages(path: Path, bad: tuple[int, ...] = (1, 3, 4)) -> Path:
    """Six images; of those in `bad`, 1 has an unknown encoding, 3 too few bytes, 4 is cut short on the wire."""
    rgb = random_frames(1, 6, 8)[0]
    with BagRecorder(path) as recorder:
        recorder.add_topic(IMAGE_TOPIC, IMAGE)
        for i in range(6):
            msg = encode_image(STORE, rgb, "rgb8", 1000 + i, "cam")
            if i == 1 and i in bad:
                msg.encoding = "yuv422"
            if i == 3 and i in bad:
                msg.data = msg.data[:-10]
            raw = serialize(STORE, msg, IMAGE)
            recorder.write(IMAGE_TOPIC, 50 + i, raw[:40] if i == 4 and i in bad else raw)
    return path


def test_bad_messages_raise_naming_index_and_stamp_by_default(tmp_path: Path) -> None:
    bag = bag_with_bad_messages(tmp_path / "b")
    stream = read_images(bag, IMAGE_TOPIC)
    assert next(stream).stamp_ns == 1000
    with pytest.raises(BagError) as err:
        next(stream)
    assert str(err.value) == (f"{bag}: {IMAGE_TOPIC}: message 1 (stamp 1001 ns): bad image (encoding): "
                              "unsupported encoding 'yuv422' "
                              "(supported: rgb8, bgr8, mono8, rgba8, bgra8, mono16, 16UC1)")


def test_skip_mode_delivers_the_good_messages_and_reports_the_bad(tmp_path: Path) -> None:
    bag = bag_with_bad_messages(tmp_path / "b")
    stream = read_images(bag, IMAGE_TOPIC, on_error="skip")
    assert len(stream) == 6
    assert [m.index for m in stream] == [0, 2, 5]
    report = stream.report
    assert report.read == 3 and report.partial and report.stopped is None
    assert [(index, stamp) for index, stamp, _ in report.bad] == [(1, 1001), (3, 1003), (4, None)]
    assert "encoding" in report.bad[0][2] and "truncated" in report.bad[1][2]
    assert "cannot deserialize sensor_msgs/msg/Image" in report.bad[2][2]
    assert report.to_dict()["bad"][1][:2] == [3, 1003]


def test_a_message_cut_short_on_the_wire_is_named_by_its_bag_time(tmp_path: Path) -> None:
    bag = bag_with_bad_messages(tmp_path / "b", bad=(4,))
    stream = read_images(bag, IMAGE_TOPIC)
    assert [next(stream).index for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(BagError, match=r"message 4 \(bag time 54 ns\): cannot deserialize sensor_msgs/msg/Image"):
        next(stream)


def test_label_maps_must_be_16_bit(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "b", "sqlite3", 2)
    with pytest.raises(BagError, match=r"message 0 \(stamp 1700000000000000000 ns\): bad label map \(encoding\)"):
        read_label_maps(bag, IMAGE_TOPIC)  # rgb8 images are not label maps
    skipped = read_label_maps(bag, IMAGE_TOPIC, on_error="skip")
    assert len(skipped) == 0 and len(skipped.report.bad) == 2


def test_on_error_is_checked(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "b", "sqlite3", 1)
    with pytest.raises(ValueError, match="on_error"):
        read_images(bag, IMAGE_TOPIC, on_error="ignore")


def test_cli_errors_are_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    bag = make_bag(tmp_path / "b", "mcap", 2)
    truncated = tmp_path / "cut"
    shutil.copytree(bag, truncated)
    data = storage_file(truncated).read_bytes()
    storage_file(truncated).write_bytes(data[: len(data) // 2])
    frames = write_png_folder(tmp_path / "frames", random_frames(2))
    cases = [
        (("info", str(tmp_path / "missing")), "no such bag"),
        (("info", str(truncated)), "truncated or corrupt"),
        (("info", str(bag), "--image-topic", "/nope"), "/nope is not in the bag"),
        (("make", str(tmp_path / "no_frames_here"), str(tmp_path / "x")), "no such file or folder"),
        (("make", str(frames), str(bag)), "already exists"),
        (("make", str(frames), str(tmp_path / "y"), "--image-topic", "camera"), "absolute ROS topic"),
    ]
    for argv, message in cases:
        assert run_bag(*argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("movseg bag: error: ") and message in err[-1], (argv, err)
        assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert bag_info(bag).message_count == 4  # the refused make left the existing bag alone
    np.testing.assert_array_equal(next(read_images(bag, IMAGE_TOPIC)).image, random_frames(2, 48, 64)[0])


def test_strings_from_the_bag_are_escaped_and_cut_in_errors(tmp_path: Path) -> None:
    rgb = random_frames(1, 6, 8)[0]
    topic = "/cam/image_raw"
    with BagRecorder(tmp_path / "h") as recorder:
        recorder.add_topic(topic, IMAGE)
        msg = encode_image(STORE, rgb, "rgb8", 1000, "cam")
        msg.encoding = "rgb8\n[ERROR] [movseg]: INJECTED\x1b[31m" + "x" * 5000
        recorder.write(topic, 50, serialize(STORE, msg, IMAGE))
    with pytest.raises(BagError) as err:
        next(read_images(tmp_path / "h", topic))
    text = str(err.value)
    assert "\n" not in text and "\x1b" not in text and len(text) < 700, repr(text[:200])
    assert "rgb8\\n[ERROR] [movseg]: INJECTED\\x1b[31m" in text and "more characters" in text
