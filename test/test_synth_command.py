"""`movseg synth gallery|bench|write` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.cli import main
from movseg_ros.datasets.davis import read_sequence


def test_gallery_writes_a_png_grid(tmp_path: Path, capsys) -> None:
    out = tmp_path / "g" / "gallery.png"
    assert main(["synth", "gallery", "--preset", "stemseg", "--seed", "3", "--width", "192", "--height", "108",
                 "--rows", "3", "--out", str(out), "--json", str(tmp_path / "g.json")]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] == 1280
    assert image.shape[0] == 3 * round(320 * 108 / 192)  # 3 rows of 4 thumbnails 320 wide
    text = capsys.readouterr().out
    assert "moving per frame" in text and str(out) in text
    summary = json.loads((tmp_path / "g.json").read_text())
    assert summary["seed"] == 3 and len(next(iter(summary["moving"].values()))) == 8


def test_bench_runs_with_tiny_settings(tmp_path: Path, capsys) -> None:
    assert main(["synth", "bench", "--width", "64", "--height", "48", "--frames", "2", "--seconds", "0.2",
                 "--json", str(tmp_path / "b.json")]) == 0
    assert "frames/s" in capsys.readouterr().out
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["what"], r["workers"]) for r in rows] == [
        ("generate_clip", 0), ("SynthClipDataset+DataLoader", 0), ("SynthClipDataset+DataLoader", 2),
        ("SynthPairDataset+DataLoader", 0)]
    assert all(r["frames_per_s"] > 0 for r in rows)


def test_write_makes_davis_sequences(tmp_path: Path, capsys) -> None:
    assert main(["synth", "write", "--preset", "motion", "--clips", "2", "--seed", "4", "--width", "96",
                 "--height", "72", "--out", str(tmp_path / "data"), "--json", str(tmp_path / "w.json")]) == 0
    names = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert names == ["motion-00004", "motion-00005"]
    assert len(read_sequence(tmp_path / "data" / names[0])) == 4
    assert "motion-00005" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "w.json").read_text())["clips"]) == 2


def test_write_bag_goes_through_the_bag_tools_and_replays(tmp_path: Path) -> None:
    from movseg_ros.bags.reader import bag_info, read_images, read_label_maps
    from movseg_ros.synth import generate_clip, preset

    assert main(["synth", "write", "--preset", "motion", "--clips", "1", "--seed", "3", "--width", "96",
                 "--height", "72", "--frames", "5", "--bag", "--rate", "10", "--out", str(tmp_path / "data")]) == 0
    bag = tmp_path / "data" / "bags" / "motion-00003"
    info = bag_info(bag)
    assert {t.name: t.count for t in info.topics} == {"/camera/image_raw": 5, "/camera/ground_truth": 5}
    clip = generate_clip(preset("motion").replace(width=96, height=72, frames=5), 3)
    truth = read_label_maps(bag, "/camera/ground_truth")
    movers = {i for t in range(5) for i in clip.moving_ids(t)}
    for message, stamp in zip(read_images(bag, "/camera/image_raw"), sorted(truth)):
        assert message.stamp_ns == stamp and np.array_equal(message.image, clip.images[message.index])
        ids = clip.instances[message.index]
        assert np.array_equal(truth[stamp], np.where(np.isin(ids, list(movers)), ids, 0))
    assert main(["replay", str(bag), "--out", str(tmp_path / "replay")]) == 0
    assert json.loads((tmp_path / "replay" / "summary.json").read_text())["account"]["adds_up"]


@pytest.mark.parametrize("argv, message", [
    (["gallery", "--preset", "nope"], "unknown synth preset 'nope'"),
    (["gallery", "--width", "8"], "width"),
    (["bench", "--seconds", "0"], "--seconds"),
    (["write", "--clips", "0"], "--clips"),
    (["gallery", "--seed", "-2"], "--seed"),
])
def test_bad_input_is_a_clear_error(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert main(["synth", *argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("movseg synth: error:") and message in err
