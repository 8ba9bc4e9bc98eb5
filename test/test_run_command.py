"""`movseg run` end to end on a short image folder and a short video, and its errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.commands import run as run_command
from movseg_ros.commands.run import load_pipeline_config
from movseg_ros.paths import share_dir
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.writers import read_label_png

FRAMES = 20


def movseg_run(*argv: str | Path) -> int:
    """`movseg run ARGV` in this process (only the run subcommand's parser)."""
    parser = argparse.ArgumentParser(prog="movseg run")
    run_command.add_arguments(parser)
    return run_command.run(parser.parse_args([str(a) for a in argv]))


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return make_scene(SceneConfig(width=320, height=240, frames=FRAMES, stop_frame=10)).frames


@pytest.fixture(scope="module")
def image_folder(frames: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scene_png")
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(folder / f"frame{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def video_file(frames: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scene_video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_image_folder_run_writes_every_output(image_folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert movseg_run(image_folder, "--out", out, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["frames"] == FRAMES and summary["kind"] == "images" and summary["tracks_seen"] >= 1
    for name in ("tracks.json", "contact_sheet.png", summary["files"]["overlay"]):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    labels = sorted((out / "labels").glob("*.png"))
    assert [p.name for p in labels] == [f"{i:05d}.png" for i in range(FRAMES)]
    records = json.loads((out / "tracks.json").read_text())["frames"]
    assert [r["index"] for r in records] == list(range(FRAMES))
    assert [r["stamp_ns"] for r in records] == [round(i * 1e9 / 30) for i in range(FRAMES)]
    for path, record in zip(labels, records):
        label_map = read_label_png(path)
        assert label_map.shape == (240, 320) and label_map.dtype == np.uint16
        visible = {t["id"] for t in record["tracks"] if t["status"] == "visible" and t["area"] > 0}
        assert set(np.unique(label_map)) - {0} <= visible  # every labelled pixel belongs to a listed track
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape[1] == 1280
    capture = cv2.VideoCapture(str(out / summary["files"]["overlay"]))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    capture.release()


def test_video_run_takes_fps_from_file_and_stops_at_max_frames(video_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "video_out"
    assert movseg_run(video_file, "--out", out, "--max-frames", 8) == 0
    assert "8 frames of clip (video)" in capsys.readouterr().out
    records = json.loads((out / "tracks.json").read_text())["frames"]
    assert len(records) == 8 and len(list((out / "labels").glob("*.png"))) == 8
    assert records[1]["stamp_ns"] == 100_000_000  # the file's 10 fps
    assert movseg_run(video_file, "--out", out, "--max-frames", 3, "--fps", 5) == 0
    assert json.loads((out / "tracks.json").read_text())["frames"][1]["stamp_ns"] == 200_000_000


def test_config_file_reaches_the_pipeline(image_folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("buffer_length: 4\ntracker.alpha_low: 0.5\ntracker:\n  t_inactive: 3\n")
    loaded = load_pipeline_config(config)
    assert (loaded.buffer_length, loaded.tracker.alpha_low, loaded.tracker.t_inactive) == (4, 0.5, 3)
    assert movseg_run(image_folder, "--out", tmp_path / "o", "--config", config, "--max-frames", 3) == 0


def test_ros_params_file_keeps_only_pipeline_settings(tmp_path: Path) -> None:
    params = tmp_path / "node.yaml"
    params.write_text(
        "movseg:\n  ros__parameters:\n    queue_size: 3\n    qos.depth: 2\n"
        "    tracker.alpha_low: 0.55\n    geometric:\n      work_width: 200\n"
    )
    loaded = load_pipeline_config(params)
    assert loaded.tracker.alpha_low == 0.55 and loaded.geometric.work_width == 200
    shipped = share_dir() / "config" / "segment.yaml"
    if shipped.is_file():  # the node's own params file is a valid --config
        load_pipeline_config(shipped)


def test_bad_config_is_a_clear_error(image_folder: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("tracker:\n  alpha_lo: 0.5\n")
    assert movseg_run(image_folder, "--config", config, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "typo.yaml" in err and "tracker.alpha_lo" in err


def test_missing_input_is_a_clear_error(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere" / "clip.mp4"
    assert movseg_run(missing, "--out", tmp_path / "o") != 0
    err = capsys.readouterr().err
    assert str(missing) in err and "no such file" in err


def test_empty_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    assert movseg_run(empty, "--out", tmp_path / "o") != 0
    err = capsys.readouterr().err
    assert str(empty) in err and "no " in err


def test_unreadable_image_names_the_file(frames: list[np.ndarray], tmp_path: Path, capsys) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), frames[0])
    (folder / "001.png").write_bytes(b"definitely not a png")
    assert movseg_run(folder, "--out", tmp_path / "o") != 0
    assert str(folder / "001.png") in capsys.readouterr().err


def test_offline_tracking_writes_one_entry_per_frame(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "offline"
    assert movseg_run(image_folder, "--out", out, "--offline", "--max-frames", 10) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["offline"] is True and summary["frames"] == 10
    assert len(json.loads((out / "tracks.json").read_text())["frames"]) == 10


def small_folder(frames: list[np.ndarray], folder: Path, count: int = 5) -> list[Path]:
    """`count` 64x48 JPEG frames of the scene (tiny, so the pipeline runs in moments)."""
    folder.mkdir()
    paths = [folder / f"{i:05d}.jpg" for i in range(count)]
    for path, rgb in zip(paths, frames):
        cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(rgb, (64, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))
    return paths


def test_truncated_frame_is_an_error_or_skipped_and_listed(frames: list[np.ndarray], tmp_path: Path, capsys) -> None:
    paths = small_folder(frames, tmp_path / "cut")
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) // 2])  # OpenCV alone would decode this as a grey-filled frame
    assert movseg_run(tmp_path / "cut", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"movseg run: error: {paths[2]}: truncated JPEG: no end-of-image marker (FFD9) after the scan "
                   f"data (file is {len(data) // 2:,} bytes)")
    out = tmp_path / "partial"
    assert movseg_run(tmp_path / "cut", "--out", out, "--allow-partial") == 0
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable frame(s)" in printed and f"{paths[2]}: truncated JPEG" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 4 and summary["frames_skipped"] == 1
    (skip,) = summary["skipped_frames"]
    assert skip["file"] == str(paths[2]) and skip["problem"].startswith("truncated JPEG: no end-of-image marker")
    assert sorted(p.name for p in (out / "labels").glob("*.png")) == ["00000.png", "00001.png", "00003.png", "00004.png"]


def test_frames_of_mixed_sizes_name_the_file_and_both_sizes(frames: list[np.ndarray], tmp_path: Path,
                                                             capsys) -> None:
    paths = small_folder(frames, tmp_path / "mixed", count=3)
    cv2.imwrite(str(paths[2]), np.zeros((48, 80, 3), np.uint8))
    assert movseg_run(tmp_path / "mixed", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert f"{paths[2]} is 80x48 but the first frame, 00000.jpg, is 64x48" in err
