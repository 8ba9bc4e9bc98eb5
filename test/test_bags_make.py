"""`movseg bag make` and write_image_bag: real bags in both storages, read back frame by frame."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bags_helpers import label_maps, random_frames, run_bag, write_davis_folder, write_png_folder
from movseg_ros.bags.errors import BagError
from movseg_ros.bags.reader import bag_info, read_images, read_label_maps
from movseg_ros.bags.topics import IMAGE_TOPIC, TRUTH_TOPIC
from movseg_ros.bags.writer import START_NS, BagMakeConfig, write_image_bag

STORAGES = ("sqlite3", "mcap")


@pytest.mark.parametrize("storage", STORAGES)
def test_image_folder_bag_has_every_pixel_and_exact_stamps(tmp_path: Path, storage: str) -> None:
    frames = random_frames(7)
    folder = write_png_folder(tmp_path / "frames", frames)
    out = tmp_path / "folder.bag"
    assert run_bag("make", str(folder), str(out), "--rate", "12.5", "--storage", storage,
                   "--json", str(tmp_path / "make.json")) == 0

    info = bag_info(out)
    assert info.storage == storage
    assert [(t.name, t.msgtype, t.count) for t in info.topics] == [(IMAGE_TOPIC, "sensor_msgs/msg/Image", 7)]
    images = list(read_images(out, IMAGE_TOPIC))
    assert [m.index for m in images] == list(range(7))
    assert [m.stamp_ns for m in images] == [START_NS + round(i * 1e9 / 12.5) for i in range(7)]
    assert [m.log_ns for m in images] == [m.stamp_ns for m in images]
    assert all(m.encoding == "rgb8" and m.frame_id == "camera" for m in images)
    for message, source in zip(images, frames):
        assert message.image.dtype == np.uint8
        np.testing.assert_array_equal(message.image, source)
    assert info.start_ns == START_NS and info.end_ns == START_NS + 480_000_000 and info.duration_ns == 480_000_000

    summary = json.loads((tmp_path / "make.json").read_text())
    assert summary["frames"] == 7 and summary["truth_frames"] == 0 and summary["storage"] == storage
    assert summary["duration_ns"] == 480_000_000 and summary["width"] == 52 and summary["height"] == 36


@pytest.mark.parametrize("storage", STORAGES)
def test_davis_layout_bag_carries_instance_truth_with_the_image_stamps(tmp_path: Path, storage: str) -> None:
    frames, truth = random_frames(6, seed=3), label_maps(6)
    folder = write_davis_folder(tmp_path / "seq", frames, truth)
    out = tmp_path / "seq.bag"
    assert run_bag("make", str(folder), str(out), "--storage", storage, "--max-frames", "5",
                   "--json", str(tmp_path / "make.json")) == 0

    images = list(read_images(out, IMAGE_TOPIC))
    labels = read_label_maps(out, TRUTH_TOPIC)
    assert len(images) == 5 and len(labels) == 5
    assert sorted(labels) == [m.stamp_ns for m in images]  # truth stamps equal image stamps
    assert [m.stamp_ns for m in images] == [START_NS + round(i * 1e9 / 30.0) for i in range(5)]
    for i, message in enumerate(images):
        np.testing.assert_array_equal(message.image, frames[i])
        assert labels[message.stamp_ns].dtype == np.uint16
        np.testing.assert_array_equal(labels[message.stamp_ns], truth[i])  # ids 1..3 kept, not binarised
    assert labels.report.read == 5 and not labels.report.partial
    summary = json.loads((tmp_path / "make.json").read_text())
    assert (summary["truth_frames"], summary["truth_kind"], summary["source_kind"]) == (5, "instances", "davis")


def test_resize_shrinks_images_smoothly_and_truth_by_nearest(tmp_path: Path) -> None:
    frames, truth = random_frames(3, seed=5), label_maps(3)
    folder = write_davis_folder(tmp_path / "seq", frames, truth)
    out = tmp_path / "small.bag"
    assert run_bag("make", str(folder), str(out), "--resize", "26x18", "--storage", "mcap") == 0
    images = list(read_images(out, IMAGE_TOPIC))
    labels = read_label_maps(out, TRUTH_TOPIC)
    for i, message in enumerate(images):
        assert message.image.shape == (18, 26, 3)
        np.testing.assert_array_equal(message.image, cv2.resize(frames[i], (26, 18), interpolation=cv2.INTER_AREA))
        np.testing.assert_array_equal(labels[message.stamp_ns],
                                      cv2.resize(truth[i], (26, 18), interpolation=cv2.INTER_NEAREST))


def test_video_source_uses_its_own_frame_rate(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    for rgb in random_frames(6, 48, 64, seed=7):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "video.bag"
    assert run_bag("make", str(video), str(out)) == 0
    stamps = [m.stamp_ns for m in read_images(out, IMAGE_TOPIC)]
    assert len(stamps) == 6
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [round((i + 1) * 1e9 / 12) - round(i * 1e9 / 12)
                                                            for i in range(5)]


@pytest.mark.parametrize("storage", STORAGES)
def test_davis_dev_sequence(tmp_path: Path, storage: str) -> None:
    from movseg_ros.datasets.davis import default_root, read_sequence
    root = default_root()
    if not (root / "dog").is_dir():
        pytest.skip(f"DAVIS dev set not found at {root} (set MOVSEG_DAVIS or add ../shared/data/davis2016)")
    out = tmp_path / "dog.bag"
    assert run_bag("make", str(root / "dog"), str(out), "--max-frames", "5", "--resize", "107x60",
                   "--storage", storage) == 0
    sequence = read_sequence(root / "dog")
    images = list(read_images(out, IMAGE_TOPIC))
    labels = read_label_maps(out, TRUTH_TOPIC)
    assert len(images) == 5 and sorted(labels) == [m.stamp_ns for m in images]
    for i, message in enumerate(images):
        expected = cv2.resize(sequence.image(i), (107, 60), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(message.image, expected)
        binary = sequence.binary(i)
        mask = cv2.resize(binary.astype(np.uint8), (107, 60), interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(labels[message.stamp_ns], mask.astype(np.uint16))  # DAVIS 2016: label 1
        assert labels[message.stamp_ns].max() == 1


def test_library_writer_mixes_frames_with_and_without_truth(tmp_path: Path) -> None:
    frames, truth = random_frames(4), label_maps(4)
    pairs = [(frames[0], truth[0]), (frames[1], None), (frames[2], truth[2]), (frames[3], None)]
    config = BagMakeConfig(rate_hz=10.0, storage="mcap", image_topic="/cam/rgb", truth_topic="/cam/gt",
                           frame_id="optical", start_ns=5_000_000_000)
    summary = write_image_bag(tmp_path / "mixed", pairs, config)
    assert (summary.frames, summary.truth_frames, summary.duration_ns) == (4, 2, 300_000_000)
    assert summary.to_dict()["path"] == str(tmp_path / "mixed")
    labels = read_label_maps(tmp_path / "mixed", "/cam/gt")
    assert sorted(labels) == [5_000_000_000, 5_200_000_000]
    np.testing.assert_array_equal(labels[5_200_000_000], truth[2])
    assert {m.frame_id for m in read_images(tmp_path / "mixed", "/cam/rgb")} == {"optical"}


def test_existing_bag_is_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_image_bag(out, [(f, None) for f in random_frames(2)])
    with pytest.raises(BagError, match="already exists") as err:
        write_image_bag(out, [(f, None) for f in random_frames(3)])
    assert str(out) in str(err.value)
    assert bag_info(out).message_count == 2
    write_image_bag(out, [(f, None) for f in random_frames(3)], overwrite=True)
    assert bag_info(out).message_count == 3


def test_overwrite_never_deletes_a_folder_that_is_not_a_bag(tmp_path: Path) -> None:
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        write_image_bag(folder, [(f, None) for f in random_frames(1)], overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_bad_frames_leave_no_half_written_bag(tmp_path: Path) -> None:
    out = tmp_path / "bad"
    frames = random_frames(2) + random_frames(1, h=20)
    with pytest.raises(BagError, match="frame 2 is 52x20") as err:
        write_image_bag(out, [(f, None) for f in frames])
    assert str(out) in str(err.value) and not out.exists()
    with pytest.raises(BagError, match="truth is 10x10"):
        write_image_bag(out, [(random_frames(1)[0], np.zeros((10, 10), np.uint16))])
    with pytest.raises(BagError, match="0..65535"):
        write_image_bag(out, [(random_frames(1)[0], np.full((36, 52), 70000, np.int32))])
    with pytest.raises(BagError, match="no frames"):
        write_image_bag(out, [])
    assert not out.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"rate_hz": 0.0}, "rate_hz"), ({"rate_hz": -5.0}, "rate_hz"), ({"rate_hz": float("nan")}, "rate_hz"),
    ({"storage": "rosbag1"}, "sqlite3 or mcap"), ({"image_topic": "camera"}, "absolute"),
    ({"truth_topic": IMAGE_TOPIC}, "must differ"), ({"start_ns": -1}, "start_ns"),
])
def test_bag_make_config_is_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BagMakeConfig(**kwargs)
