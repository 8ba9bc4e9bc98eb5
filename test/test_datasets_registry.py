"""open_dataset: layout detection, image folders and video files as sequences, and clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.datasets import DatasetError, detect_kind, open_dataset

H, W = 24, 32


def write_png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((H, W, 3), value, np.uint8))


def test_detects_each_layout(tmp_path: Path) -> None:
    layouts = {
        "davis_flat": ["bear/JPEGImages/00000.png", "bear/Annotations/00000.png"],
        "davis_one": ["JPEGImages/00000.png"],
        "davis_official": ["JPEGImages/480p/bear/00000.png"],
        "ytvos_split": ["JPEGImages/0a1b/00000.png"],
        "ytvos_root": ["train/JPEGImages/0a1b/00000.png"],
        "kitti": ["image_02/0000/000000.png"],
        "motschallenge": ["MOTS20-02/img1/000001.png"],
        "fbms_sets": ["Trainingset/cars1/cars1_01.png"],
        "fbms_seq": ["cars1_01.png", "GroundTruth/cars1_01_gt.png"],
        "frames": ["f1.png", "f2.png"],
    }
    for name, files in layouts.items():
        for f in files:
            write_png(tmp_path / name / f, 0)
    (tmp_path / "kitti" / "instances_txt").mkdir()
    expected = {
        "davis_flat": "davis", "davis_one": "davis", "davis_official": "davis", "ytvos_split": "ytvos",
        "ytvos_root": "ytvos", "kitti": "mots", "motschallenge": "mots", "fbms_sets": "fbms", "fbms_seq": "fbms",
        "frames": "images",
    }
    assert {name: detect_kind(tmp_path / name) for name in layouts} == expected


def test_image_folder_is_a_sequence_without_truth(tmp_path: Path) -> None:
    for name, value in (("f10.png", 30), ("f2.png", 20), ("f1.png", 10)):
        write_png(tmp_path / "clip" / name, value)
    (seq,) = open_dataset(tmp_path / "clip", fps=12.5)
    assert (seq.name, seq.dataset, len(seq), seq.size, seq.fps) == ("clip", "images", 3, (H, W), 12.5)
    assert seq.frame_names == ("f1", "f2", "f10") and seq.annotated == ()
    assert [int(seq.image(i)[0, 0, 0]) for i in range(3)] == [10, 20, 30]
    with pytest.raises(DatasetError, match="sequence clip has no ground truth"):
        seq.labels(0)
    with pytest.raises(IndexError):
        seq.image(3)


def test_video_file_reads_in_order_and_by_seeking(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (W, H))
    for i in range(6):
        writer.write(np.full((H, W, 3), 40 * i, np.uint8))
    writer.release()
    (seq,) = open_dataset(path)
    assert (seq.name, seq.dataset, len(seq), seq.size, seq.fps) == ("clip", "video", 6, (H, W), 15.0)
    in_order = [int(seq.image(i).mean()) for i in range(6)]
    assert in_order == pytest.approx([40 * i for i in range(6)], abs=3)
    assert int(seq.image(4).mean()) == in_order[4] and int(seq.image(1).mean()) == in_order[1]  # seeks back


def test_unknown_or_missing_paths_say_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"notes: no data set layout recognised; looked for DAVIS .*FBMS.*KITTI-MOTS.*YouTube-VOS"):
        open_dataset(tmp_path / "notes")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no data set layout recognised"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="nowhere: no such file or folder"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(DatasetError, match=r"broken\.mp4: cannot open video"):
        open_dataset(tmp_path / "broken.mp4")
    write_png(tmp_path / "one" / "a.png", 0)
    with pytest.raises(DatasetError, match=r"no sequence\(s\) \['b'\]; found \['one'\]"):
        open_dataset(tmp_path / "one", names=["b"])
    with pytest.raises(ValueError, match="kind must be one of"):
        open_dataset(tmp_path / "one", kind="kitti")
