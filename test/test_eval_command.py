"""`movseg eval` on a DAVIS-layout folder made from the built-in scene (so no data set is needed)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.cli import main
from movseg_ros.datasets.davis import find_sequences, read_sequence
from movseg_ros.scene import SceneConfig, make_scene


def write_davis_sequence(root: Path, name: str, seed: int, frames: int = 16) -> None:
    """JPEGImages/ and Annotations/ (255 = the objects that move at some point) like DAVIS 2016."""
    scene = make_scene(SceneConfig(width=320, height=240, frames=frames, seed=seed, stop_frame=frames))
    (root / name / "JPEGImages").mkdir(parents=True)
    (root / name / "Annotations").mkdir(parents=True)
    movers = [scene.roles["mover"], scene.roles["stopper"]]
    for i, (image, ids) in enumerate(zip(scene.frames, scene.ids)):
        cv2.imwrite(str(root / name / "JPEGImages" / f"{i:05d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / name / "Annotations" / f"{i:05d}.png"), np.isin(ids, movers).astype(np.uint8) * 255)


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("davis")
    write_davis_sequence(root, "scene-a", seed=0)
    write_davis_sequence(root, "scene-b", seed=1)
    return root


def test_eval_prints_j_per_sequence_and_writes_json_and_plot(davis_root: Path, tmp_path: Path, capsys) -> None:
    out_json, out_png = tmp_path / "eval.json", tmp_path / "eval.png"
    assert main(["eval", "--data", str(davis_root), "--json", str(out_json), "--plot", str(out_png)]) == 0
    table = capsys.readouterr().out
    assert "scene-a" in table and "scene-b" in table and "mean" in table
    summary = json.loads(out_json.read_text())
    rows = {r["sequence"]: r for r in summary["sequences"]}
    assert set(rows) == {"scene-a", "scene-b"}
    for r in rows.values():
        assert len(r["J_per_frame"]) == r["frames"] == 16
        assert r["J_per_frame"][0] == 0.0  # online: no motion seen yet in the first frame
        assert r["J"] > 0.6  # both movers found on the synthetic scene
    assert summary["mean_J"] == pytest.approx(np.mean([r["J"] for r in rows.values()]))
    assert cv2.imread(str(out_png)) is not None


def test_eval_offline_labels_the_first_frame_too(davis_root: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "offline.json"
    assert main(["eval", "--data", str(davis_root), "--sequences", "scene-a", "--offline", "--json", str(out_json)]) == 0
    (row,) = json.loads(out_json.read_text())["sequences"]
    assert row["J_per_frame"][0] > 0.5  # the backward pass carries the objects back to frame 0


def test_eval_errors_name_the_missing_folder_or_sequence(davis_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["eval", "--data", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["eval", "--data", str(davis_root), "--sequences", "no-such-seq"]) == 2
    assert "no-such-seq" in capsys.readouterr().err


def test_reader_rejects_sequences_with_missing_annotations(davis_root: Path, tmp_path: Path) -> None:
    seq = tmp_path / "broken"
    (seq / "JPEGImages").mkdir(parents=True)
    (seq / "Annotations").mkdir()
    for i in range(3):
        cv2.imwrite(str(seq / "JPEGImages" / f"{i:05d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    for i in (0, 1):  # frame 2 has no annotation (only-the-first-frame is the semi-supervised layout, allowed)
        cv2.imwrite(str(seq / "Annotations" / f"{i:05d}.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"00002\.png: annotation missing for frame 00002\.jpg: 2 of 3"):
        read_sequence(seq)
    assert [s.name for s in find_sequences(davis_root)] == ["scene-a", "scene-b"]
