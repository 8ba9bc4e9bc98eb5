"""Offline inputs: frame order, stamps, colour order and clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.sources import SourceError, open_source


def write_png(path: Path, value: int) -> None:
    cv2.imwrite(str(path), np.full((24, 32, 3), value, np.uint8))


def test_image_folder_sorts_naturally_and_stamps_by_fps(tmp_path: Path) -> None:
    for name, value in (("f10.png", 30), ("f2.jpg", 20), ("f1.png", 10)):
        write_png(tmp_path / name, value)
    source = open_source(tmp_path, fps=20.0)
    assert source.kind == "images" and len(source) == 3
    frames = list(source.frames())
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30]  # f1, f2, f10
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.stamp_ns for f in frames] == [0, 50_000_000, 100_000_000]
    assert len(list(source.frames(max_frames=2))) == 2


def test_davis_folder_reads_jpegimages(tmp_path: Path) -> None:
    seq = tmp_path / "bear"
    (seq / "JPEGImages").mkdir(parents=True)
    (seq / "Annotations").mkdir()
    write_png(seq / "Annotations" / "00000.png", 0)
    for i in range(4):
        write_png(seq / "JPEGImages" / f"{i:05d}.png", 40 * i)
    source = open_source(seq)
    assert (source.kind, source.name, len(source), source.fps) == ("davis", "bear", 4, 30.0)


def test_video_frames_are_rgb_with_file_fps(tmp_path: Path) -> None:
    path = tmp_path / "red.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    red_bgr = np.zeros((48, 64, 3), np.uint8)
    red_bgr[..., 2] = 220
    for _ in range(5):
        writer.write(red_bgr)
    writer.release()
    source = open_source(path)
    assert (source.kind, source.name, source.fps, len(source)) == ("video", "red", 12.0, 5)
    frames = list(source.frames())
    assert len(frames) == 5 and frames[0].image.shape == (48, 64, 3)
    r, g, b = frames[0].image.reshape(-1, 3).mean(axis=0)
    assert r > 150 and g < 60 and b < 60
    assert frames[3].stamp_ns == round(3e9 / 12)


def test_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "absent.mp4")
    with pytest.raises(SourceError, match=str(tmp_path)):
        open_source(tmp_path)  # empty folder
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(SourceError, match="notes.mp4"):
        list(open_source(text).frames())
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"garbage")
    with pytest.raises(SourceError, match="a.png"):
        list(open_source(folder).frames())
    with pytest.raises(SourceError, match="fps"):
        open_source(folder, fps=0)
