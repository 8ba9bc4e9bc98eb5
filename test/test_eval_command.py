"""`movseg eval` on a DAVIS-layout folder made from the built-in scene (so no data set is needed)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from core_helpers import write_scene_as_davis

from movseg_ros.cli import main
from movseg_ros.datasets.davis import find_sequences, read_sequence
from movseg_ros.scene import SceneConfig


def write_davis_sequence(root: Path, name: str, seed: int, frames: int = 16) -> None:
    """JPEGImages/ and Annotations/ (255 = the objects that move at some point) like DAVIS 2016."""
    write_scene_as_davis(root, name, SceneConfig(width=320, height=240, frames=frames, seed=seed, stop_frame=frames))


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("davis")
    write_davis_sequence(root, "scene-a", seed=0)
    write_davis_sequence(root, "scene-b", seed=1)
    return root


def test_eval_prints_j_and_f_per_sequence_and_writes_json_plot_and_predictions(davis_root: Path, tmp_path: Path,
                                                                               capsys) -> None:
    out_json, out_png, preds = tmp_path / "eval.json", tmp_path / "eval.png", tmp_path / "preds"
    assert main(["eval", str(davis_root), "--json", str(out_json), "--plot", str(out_png),
                 "--write-predictions", str(preds)]) == 0
    table = capsys.readouterr().out
    assert "scene-a" in table and "scene-b" in table and "mean" in table and "J&F" in table
    summary = json.loads(out_json.read_text())
    rows = {r["sequence"]: r for r in summary["sequences"]}
    assert set(rows) == {"scene-a", "scene-b"}
    for r in rows.values():
        d = r["davis"]
        assert len(d["J_per_frame"]) == r["frames_scored"] == 16 and not r["partial"]
        assert d["J_per_frame"][0] == 0.0  # online: no motion seen yet in the first frame
        assert d["J"]["mean"] > 0.6  # both movers found on the synthetic scene
        assert d["J&F"] == pytest.approx((d["J"]["mean"] + d["F"]["mean"]) / 2)
    overall = summary["overall"]["davis_binary"]
    assert overall["J-Mean"] == pytest.approx(np.mean([r["davis"]["J"]["mean"] for r in rows.values()]))
    assert cv2.imread(str(out_png)) is not None
    for kind in ("binary", "instances"):
        assert len(list((preds / kind / "scene-a").glob("*.png"))) == 16
    # the written files score the same when read back (prediction-folder mode)
    again = tmp_path / "again.json"
    assert main(["eval", str(davis_root), "--predictions", str(preds / "binary"), "--json", str(again)]) == 0
    back = {r["sequence"]: r for r in json.loads(again.read_text())["sequences"]}
    for name, r in rows.items():
        assert back[name]["davis"]["J"] == r["davis"]["J"] and back[name]["davis"]["F"] == r["davis"]["F"]


def test_eval_offline_labels_the_first_frame_too(davis_root: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "offline.json"
    assert main(["eval", str(davis_root), "--sequences", "scene-a", "--offline", "--json", str(out_json),
                 "--write-predictions", str(tmp_path / "p")]) == 0
    (row,) = json.loads(out_json.read_text())["sequences"]
    assert row["davis"]["J_per_frame"][0] > 0.5  # the backward pass carries the objects back to frame 0


def test_missing_prediction_files_are_an_error_or_a_partial_result(davis_root: Path, tmp_path: Path, capsys) -> None:
    preds = tmp_path / "preds"
    assert main(["eval", str(davis_root), "--sequences", "scene-a", "--write-predictions", str(preds)]) == 0
    (preds / "binary" / "scene-a" / "00005.png").unlink()
    capsys.readouterr()
    assert main(["eval", str(davis_root), "--sequences", "scene-a", "--predictions", str(preds / "binary")]) == 2
    err = capsys.readouterr().err
    assert "00005" in err and "scene-a" in err
    out_json = tmp_path / "partial.json"
    assert main(["eval", str(davis_root), "--sequences", "scene-a", "--predictions", str(preds / "binary"),
                 "--allow-partial", "--json", str(out_json)]) == 0
    assert "PARTIAL" in capsys.readouterr().out
    (row,) = json.loads(out_json.read_text())["sequences"]
    assert row["partial"] and row["missing_frames"] == ["00005"] and row["frames_scored"] == 15


def test_prediction_of_another_size_is_an_error_naming_the_file(davis_root: Path, tmp_path: Path, capsys) -> None:
    preds = tmp_path / "preds"
    assert main(["eval", str(davis_root), "--sequences", "scene-a", "--write-predictions", str(preds)]) == 0
    bad = preds / "binary" / "scene-a" / "00003.png"
    cv2.imwrite(str(bad), np.zeros((10, 12), np.uint8))
    capsys.readouterr()
    assert main(["eval", str(davis_root), "--sequences", "scene-a", "--predictions", str(preds / "binary")]) == 2
    err = capsys.readouterr().err
    assert str(bad.parent) in err and "00003.png" in err and "12x10" in err


def test_dev_set_figures_agree_with_the_official_davis_code_on_the_written_files(tmp_path: Path) -> None:
    """The printed J and F equal trackeval's port of the official DAVIS code run on the same PNG files."""
    from PIL import Image

    from movseg_ros.datasets.davis import default_root
    from test_eval_davis_metrics import jandf_reference

    root = default_root()
    if not (root / "car-shadow").is_dir():
        pytest.skip(f"DAVIS dev set not present at {root}")
    out_json, preds = tmp_path / "dev.json", tmp_path / "preds"
    assert main(["eval", str(root), "--sequences", "car-shadow", "--json", str(out_json),
                 "--write-predictions", str(preds)]) == 0
    (row,) = json.loads(out_json.read_text())["sequences"]
    files = sorted((preds / "binary" / "car-shadow").glob("*.png"))
    truth_files = sorted((root / "car-shadow" / "Annotations").glob("*.png"))
    predicted = [np.asarray(Image.open(p)).astype(np.int32) for p in files]  # palette indices, as DAVIS 2017 reads
    truth = [(np.asarray(Image.open(p)) > 0).astype(np.int32) for p in truth_files]
    assert {int(v) for p in predicted for v in np.unique(p)} <= {0, 1}
    ref = jandf_reference(predicted, truth)
    assert row["davis"]["J"]["mean"] == pytest.approx(float(np.mean(ref["J-Mean"])), abs=1e-9)
    assert row["davis"]["F"]["mean"] == pytest.approx(float(np.mean(ref["F-Mean"])), abs=1e-9)
    assert row["davis"]["J"]["decay"] == pytest.approx(float(np.mean(ref["J-Decay"])), abs=1e-9)


def test_eval_errors_name_the_missing_folder_or_sequence(davis_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["eval", str(davis_root), "--sequences", "no-such-seq"]) == 2
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


def test_eval_fbms_predictions_official_and_proposed_measures(tmp_path: Path, capsys) -> None:
    """Perfect predictions plus one false-positive blob: proposed F drops below 1, official F does not."""
    from movseg_ros.datasets.predictions import write_davis_predictions
    from test_datasets_fbms import make_grey_sequence

    from movseg_ros.datasets.fbms import read_sequence as read_fbms

    seq = read_fbms(make_grey_sequence(tmp_path / "fbms"))
    maps = [seq.labels(i) if i in seq.annotated else np.zeros(seq.size, np.int32) for i in range(len(seq))]
    for m in maps:
        m[m < 0] = 0
    extra = [m.copy() for m in maps]
    for m in extra:
        m[14:18, 2:6] = 7  # a region where the truth has background
    for name, labels in (("clean", maps), ("extra", extra)):
        write_davis_predictions(tmp_path / name, seq.name, labels, "instances", seq.frame_names, renumber=False)
    results = {}
    for name in ("clean", "extra"):
        out = tmp_path / f"{name}.json"
        assert main(["eval", str(tmp_path / "fbms" / "cars1"), "--kind", "fbms", "--predictions", str(tmp_path / name),
                     "--json", str(out)]) == 0
        results[name] = json.loads(out.read_text())["overall"]
    assert "FBMS" in capsys.readouterr().out
    assert results["clean"]["fbms_proposed"]["F"] == pytest.approx(1.0)
    assert results["extra"]["fbms_proposed"]["F"] < 0.99
    assert results["clean"]["delta_obj"] == 0 and results["extra"]["delta_obj"] == 1
    assert results["extra"]["fbms_official"]["N"] == results["clean"]["fbms_official"]["N"] == 2


def test_eval_kitti_mots_predictions_with_trackeval(tmp_path: Path, capsys) -> None:
    from movseg_ros.datasets.mots import write_mots_txt
    from test_datasets_mots import expected_labels, make_kitti

    root = make_kitti(tmp_path / "kitti")
    preds = tmp_path / "preds"
    preds.mkdir()
    perfect = [expected_labels(i) % 1000 for i in range(4)]  # track ids 1, 2
    write_mots_txt(preds / "0002.txt", perfect)
    out = tmp_path / "mots.json"
    assert main(["eval", str(root), "--predictions", str(preds), "--json", str(out)]) == 0
    assert "sMOTSA" in capsys.readouterr().out
    mots = json.loads(out.read_text())["overall"]["mots"]
    assert mots["sMOTSA"] == pytest.approx(1.0) and mots["IDS"] == 0 and mots["HOTA"] == pytest.approx(1.0)
    swapped = [np.where(m == 1, 2, np.where(m == 2, 1, m)) if i >= 2 else m for i, m in enumerate(perfect)]
    write_mots_txt(preds / "0002.txt", swapped)
    assert main(["eval", str(root), "--predictions", str(preds), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["overall"]["mots"]["IDS"] >= 1


def test_unreadable_frame_files_are_an_error_or_skipped_and_listed(tmp_path: Path, capsys) -> None:
    """A cut-off frame JPEG and a corrupt annotation PNG: exit 2 naming the file; with --allow-partial both
    frames are left out of the scores and listed with their problem."""
    root = tmp_path / "davis"
    write_scene_as_davis(root, "tiny", SceneConfig(width=64, height=48, frames=6, seed=2, stop_frame=6))
    frame = root / "tiny" / "JPEGImages" / "00003.jpg"
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 2])  # OpenCV alone would decode it with grey fill and score it
    annotation = bytearray((root / "tiny" / "Annotations" / "00004.png").read_bytes())
    annotation[annotation.index(b"IDAT") + 6] ^= 0x10  # damaged pixel data: the chunk CRC no longer matches
    (root / "tiny" / "Annotations" / "00004.png").write_bytes(bytes(annotation))
    preds = str(tmp_path / "preds")
    assert main(["eval", str(root), "--write-predictions", preds]) == 2
    err = capsys.readouterr().err
    assert f"{frame}: truncated JPEG: no end-of-image marker (FFD9) after the scan data" in err
    out_json = tmp_path / "partial.json"
    assert main(["eval", str(root), "--write-predictions", preds, "--allow-partial", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "SKIPPED: 2 frame(s)" in printed and f"tiny frame 00003: {frame}: truncated JPEG" in printed
    summary = json.loads(out_json.read_text())
    (row,) = summary["sequences"]
    assert summary["overall"]["frames_skipped"] == row["frames_skipped"] == 2 and row["partial"]
    assert [(s["frame"], Path(s["file"]).name) for s in row["skipped_frames"]] == [("00003", "00003.jpg"),
                                                                                    ("00004", "00004.png")]
    assert "fails its CRC check" in row["skipped_frames"][1]["problem"]
    assert row["scored_frames"] == ["00000", "00001", "00002", "00005"] and row["missing_frames"] == []
    assert len(row["davis"]["J_per_frame"]) == 4
    assert sorted(p.stem for p in (tmp_path / "preds" / "binary" / "tiny").glob("*.png")) == [
        "00000", "00001", "00002", "00004", "00005"]  # the frame that was not read has no prediction
